import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { BUDGET_NAME, budgetSchema, type BudgetSpec } from './config.js';
import { firstProblem } from '../config/schema.js';
import { scopeRecord } from './ledger.js';
import type { BudgetAdmin, BudgetStatusRow, BudgetStore, BudgetUsage } from './store.js';
import { windowAt, type BudgetWindow } from './window.js';
import { isObject } from '../util/object.js';

/**
 * Budget state of a standalone authz: in memory, exact, persisted to `<dir>/budgets.json` a moment
 * after it changes (write to a temp file, fsync, rename: a crash leaves the old or the new file,
 * never half of one) and read back on start.
 *
 * Operators change it with `tollgate budget set/reset`, which never touch budgets.json (the running
 * process owns it): they write `<dir>/budget-admin.json`, which the store polls and applies. One
 * authz process per state directory.
 */

export const STATE_FILE = 'budgets.json';
export const ADMIN_FILE = 'budget-admin.json';

interface WindowUsage { window: string; start: number; end: number; used: number }

interface StateFile {
  version: 1;
  updatedAt: string;
  /** The declared budgets, so `tollgate budget status` works without the budgets file. */
  specs: BudgetSpec[];
  usage: Record<string, WindowUsage>;
  /** Highest admin reset sequence applied, per budget. */
  appliedResets: Record<string, number>;
}

/** The state file as read: its declarations checked, and what is wrong with those that are not. */
interface ReadState extends StateFile {
  /** `specs[2] ("daily"): window: must be one of hour, day, month, got "week"`, one per refused spec. */
  badSpecs: string[];
}

export interface AdminFile {
  version: 1;
  limits: Record<string, number>;
  /** Reset requests: `seq` grows with every request; `window` is the window it was meant for. */
  resets: Record<string, { seq: number; window: string }>;
}

function readJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${path} is not valid JSON (${(e as Error).message}); move it away to start from empty budget state`);
  }
}

export function readAdminFile(dir: string): AdminFile {
  const raw = readJson(join(dir, ADMIN_FILE));
  const out: AdminFile = { version: 1, limits: {}, resets: {} };
  if (!isObject(raw)) return out;
  if (isObject(raw.limits)) {
    for (const [k, v] of Object.entries(raw.limits)) if (typeof v === 'number' && Number.isSafeInteger(v) && v > 0) out.limits[k] = v;
  }
  if (isObject(raw.resets)) {
    for (const [k, v] of Object.entries(raw.resets)) {
      if (isObject(v) && typeof v.seq === 'number' && typeof v.window === 'string') out.resets[k] = { seq: v.seq, window: v.window };
    }
  }
  return out;
}

/**
 * The declarations recorded in the state file, each checked with the schema of the budgets file
 * (the store writes them in that shape): what `budget status` computes windows and limits from
 * must not be half a budget. authz itself never reads them back (it has its budgets file).
 */
function recordedSpecs(list: unknown): { specs: BudgetSpec[]; badSpecs: string[] } {
  if (list === undefined) return { specs: [], badSpecs: [] };
  if (!Array.isArray(list)) return { specs: [], badSpecs: ['specs: must be a list of budgets'] };
  const specs: BudgetSpec[] = [];
  const badSpecs: string[] = [];
  list.forEach((raw: unknown, i) => {
    const r = budgetSchema.safeParse(raw);
    if (!r.success) {
      const [field, problem] = firstProblem(r.error);
      const name = isObject(raw) && typeof raw.name === 'string' ? ` ("${raw.name}")` : '';
      badSpecs.push(`specs[${i}]${name}: ${field ? `${field}: ` : ''}${problem}`);
      return;
    }
    const { name, scope, limit, window, timezone, action, tokenizer, namespace } = r.data;
    specs.push({ name, scope, limit, window, timezone, action, tokenizer, ...(namespace !== undefined ? { namespace } : {}) });
  });
  return { specs, badSpecs };
}

function readStateFile(dir: string): ReadState | null {
  const raw = readJson(join(dir, STATE_FILE));
  if (!isObject(raw)) return null;
  const usage: Record<string, WindowUsage> = {};
  if (isObject(raw.usage)) {
    for (const [k, v] of Object.entries(raw.usage)) {
      if (isObject(v) && typeof v.window === 'string' && typeof v.used === 'number' && typeof v.start === 'number' && typeof v.end === 'number') {
        usage[k] = { window: v.window, start: v.start, end: v.end, used: v.used };
      }
    }
  }
  const appliedResets: Record<string, number> = {};
  if (isObject(raw.appliedResets)) for (const [k, v] of Object.entries(raw.appliedResets)) if (typeof v === 'number') appliedResets[k] = v;
  const { specs, badSpecs } = recordedSpecs(raw.specs);
  return { version: 1, updatedAt: typeof raw.updatedAt === 'string' ? raw.updatedAt : '', specs, usage, appliedResets, badSpecs };
}

/** Writes a file so that readers see the old or the new content, never a torn one. */
export async function writeFileAtomic(path: string, data: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(data, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

export interface LocalStoreOptions {
  /** State directory (budgets.json and budget-admin.json live here). */
  dir: string;
  /** Write at most this often after a change (default 1000 ms). */
  persistDelayMs?: number;
  /** Look for `tollgate budget set/reset` requests this often (default 2000 ms; 0: only on start). */
  adminPollMs?: number;
  clock?: () => number;
  onError?: (e: Error) => void;
}

export class LocalBudgetStore implements BudgetStore {
  private readonly usageByName = new Map<string, WindowUsage>();
  private readonly appliedResets: Record<string, number>;
  private limits: Record<string, number> = {};
  private dirty = false;
  private timer: NodeJS.Timeout | null = null;
  private poller: NodeJS.Timeout | null = null;
  private writing: Promise<void> = Promise.resolve();
  private adminStamp = '';
  private closed = false;
  private readonly clock: () => number;

  private constructor(private readonly specs: BudgetSpec[], private readonly opts: LocalStoreOptions, state: StateFile | null) {
    this.clock = opts.clock ?? Date.now;
    for (const [k, v] of Object.entries(state?.usage ?? {})) this.usageByName.set(k, v);
    this.appliedResets = { ...(state?.appliedResets ?? {}) };
  }

  /** Loads the state left by the previous run (if any) and applies pending admin requests. */
  static open(specs: BudgetSpec[], opts: LocalStoreOptions): LocalBudgetStore {
    mkdirSync(opts.dir, { recursive: true });
    const store = new LocalBudgetStore(specs, opts, readStateFile(opts.dir));
    store.pollAdmin();
    const every = opts.adminPollMs ?? 2000;
    if (every > 0) {
      store.poller = setInterval(() => store.pollAdmin(), every);
      store.poller.unref();
    }
    store.markDirty(); // records the declared specs for `budget status`
    return store;
  }

  get stateFile(): string { return join(this.opts.dir, STATE_FILE); }

  usage(spec: BudgetSpec, window: BudgetWindow): BudgetUsage {
    const u = this.usageByName.get(spec.name);
    const used = u && u.window === window.key ? u.used : 0;
    const limit = this.limits[spec.name] ?? spec.limit;
    return { limit, used, spendable: Math.max(0, limit - used) };
  }

  spend(spec: BudgetSpec, window: BudgetWindow, tokens: number): void {
    if (!(tokens > 0)) return;
    const u = this.current(spec, window);
    u.used += tokens;
    this.markDirty();
  }

  private current(spec: BudgetSpec, window: BudgetWindow): WindowUsage {
    let u = this.usageByName.get(spec.name);
    if (!u || u.window !== window.key) {
      u = { window: window.key, start: window.start, end: window.end, used: 0 };
      this.usageByName.set(spec.name, u);
    }
    return u;
  }

  /** Applies limit overrides and reset requests written by `tollgate budget set/reset`. */
  pollAdmin(): void {
    let stamp: string;
    try {
      const st = statSync(join(this.opts.dir, ADMIN_FILE));
      stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
    } catch {
      return;
    }
    if (stamp === this.adminStamp) return;
    let admin: AdminFile;
    try {
      admin = readAdminFile(this.opts.dir);
    } catch (e) {
      this.opts.onError?.(e as Error);
      return;
    }
    this.adminStamp = stamp;
    this.limits = admin.limits;
    const now = this.clock();
    for (const spec of this.specs) {
      const r = admin.resets[spec.name];
      if (!r || r.seq <= (this.appliedResets[spec.name] ?? 0)) continue;
      this.appliedResets[spec.name] = r.seq;
      const window = windowAt(spec.window, spec.timezone, now);
      // A reset meant for a window that has passed has nothing left to reset.
      if (r.window === window.key) this.current(spec, window).used = 0;
    }
    this.markDirty();
  }

  private markDirty(): void {
    this.dirty = true;
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.flush();
    }, this.opts.persistDelayMs ?? 1000);
    this.timer.unref();
  }

  private snapshot(): string {
    const state: StateFile = {
      version: 1,
      updatedAt: new Date(this.clock()).toISOString(),
      specs: this.specs,
      // Budgets no longer declared are dropped, so renamed budgets do not pile up in the file.
      usage: Object.fromEntries([...this.usageByName].filter(([name]) => this.specs.some((x) => x.name === name))),
      appliedResets: this.appliedResets,
    };
    return JSON.stringify(state, null, 1) + '\n';
  }

  /** Writes the state now (serialised with any write under way). */
  flush(): Promise<void> {
    this.writing = this.writing.then(async () => {
      if (!this.dirty) return;
      this.dirty = false;
      try {
        await writeFileAtomic(this.stateFile, this.snapshot());
      } catch (e) {
        this.dirty = true;
        this.opts.onError?.(new Error(`cannot save budget state to ${this.stateFile}: ${(e as Error).message}`));
      }
    });
    return this.writing;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.poller) clearInterval(this.poller);
    this.timer = null;
    this.poller = null;
    await this.flush();
  }
}

/** `tollgate budget status/set/reset` against a state directory. */
export class LocalBudgetAdmin implements BudgetAdmin {
  /** `specs`: the budgets file's declarations, when given; else those the last authz run recorded. */
  constructor(private readonly dir: string, private readonly specs: BudgetSpec[] | null = null) {}

  private known(): BudgetSpec[] {
    if (this.specs) return this.specs;
    const state = readStateFile(this.dir);
    if (state?.badSpecs.length) {
      throw new Error(`${join(this.dir, STATE_FILE)} records budgets this version cannot read (written by another version, or edited):\n  ${state.badSpecs.join('\n  ')}\n` +
        'Pass the budgets file with --budgets FILE to read the declarations from it instead; authz rewrites the recorded ones when it starts');
    }
    return state?.specs ?? [];
  }

  private spec(name: string): BudgetSpec {
    const specs = this.known();
    const s = specs.find((x) => x.name === name);
    if (!s) {
      const names = specs.map((x) => x.name);
      throw new Error(names.length
        ? `no budget named "${name}" in ${this.dir} (known: ${names.join(', ')})`
        : `no budgets recorded in ${this.dir}: start authz with a budgets file once, or pass --budgets FILE`);
    }
    return s;
  }

  async status(now: number): Promise<BudgetStatusRow[]> {
    const state = readStateFile(this.dir);
    const admin = readAdminFile(this.dir);
    return this.known().map((spec) => {
      const w = windowAt(spec.window, spec.timezone, now);
      const u = state?.usage[spec.name];
      let used = u && u.window === w.key ? u.used : 0;
      const r = admin.resets[spec.name];
      if (r && r.seq > (state?.appliedResets[spec.name] ?? 0) && r.window === w.key) used = 0;
      const limit = admin.limits[spec.name] ?? spec.limit;
      return {
        name: spec.name, scope: scopeRecord(spec), window: spec.window, windowKey: w.key, timezone: spec.timezone, action: spec.action,
        limit, declaredLimit: spec.limit, used, remaining: Math.max(0, limit - used), resetsAt: new Date(w.end).toISOString(),
      };
    });
  }

  async setLimit(name: string, limit: number): Promise<void> {
    if (!BUDGET_NAME.test(name)) throw new Error(`"${name}" is not a budget name`);
    this.spec(name);
    const admin = readAdminFile(this.dir);
    admin.limits[name] = limit;
    await writeFileAtomic(join(this.dir, ADMIN_FILE), JSON.stringify(admin, null, 1) + '\n');
  }

  async reset(name: string, now: number): Promise<void> {
    const spec = this.spec(name);
    const admin = readAdminFile(this.dir);
    const applied = readStateFile(this.dir)?.appliedResets[name] ?? 0;
    const seq = Math.max(admin.resets[name]?.seq ?? 0, applied) + 1;
    admin.resets[name] = { seq, window: windowAt(spec.window, spec.timezone, now).key };
    await writeFileAtomic(join(this.dir, ADMIN_FILE), JSON.stringify(admin, null, 1) + '\n');
  }

  async close(): Promise<void> {}
}
