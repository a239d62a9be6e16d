import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { NatsConnection } from '@nats-io/transport-node';
import { NatsLink } from '../nats/connect.js';
import { placedIn } from '../nats/placement.js';
import { parseServers } from '../nats/settings.js';
import { jetstream, JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import type { BudgetSpec, NatsBudgetSettings } from './config.js';
import {
  decodeUsageState, emptyUsageState, encodeUsageState, fairShare, leaseSize, resetState, settle, unknownOutcome, type LeaseRecord, type UsageState,
} from './lease.js';
import { scopeRecord } from './ledger.js';
import type { BudgetAdmin, BudgetStatusRow, BudgetStore, BudgetUsage } from './store.js';
import { nextWindow, windowAt, type BudgetWindow } from './window.js';
import { conflictBackoffMs, MAX_CAS_ROUNDS, MAX_GIVE_BACK_ROUNDS, nextReportInterval } from './contention.js';

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The longest a Check waits for a replica's first lease on a budget (or the KV timeout, if shorter). */
export const FIRST_LEASE_WAIT_MS = 500;


/**
 * Budget state shared by authz replicas through NATS JetStream KV (see lease.ts for the protocol).
 *
 * A replica leases a budget when a caller it serves first may charge it (prepare(), awaited by
 * Check: one KV round trip, once per budget and window), and gives the lease back after the
 * budget has gone unused for a while (idleMs), so replicas hold leases only on budgets their
 * callers use. Otherwise Check never waits on NATS: usage() and spend() read and update this
 * replica's lease in memory.
 * A background loop, per budget and window, takes a new lease when the lease runs low, reports
 * what was spent every sync interval (less often on a crowded key), and takes the next window's
 * lease shortly before rollover so the first call of a new hour/day/month finds one waiting. A
 * lease does not expire while NATS answers; it has nothing to renew.
 */

export const USAGE_TTL_MS = 62 * 24 * 3_600_000;
const LIMITS_KEY = 'limits';
const SPECS_KEY = 'specs';

/**
 * The KV key of one budget's usage in one window: `w.<ns>.<budget>.<window>`, where `<ns>` is the
 * Kubernetes namespace owning the budget (TokenBudget) or `_` for a mesh-wide budget (no namespace
 * is named `_`). The namespace is a subject token of its own so that a NATS permission can give
 * each namespace's sidecars their own keys (`w.<ns>.*.*`) and mesh-wide ones (`w._.*.*`) and
 * nothing else. Budget names, namespaces and window keys hold no dots.
 */
export function usageKey(budget: string, windowKey: string, namespace?: string): string {
  return `w.${namespace ?? MESH_WIDE}.${budget}.${windowKey}`;
}

/** The namespace token of mesh-wide budgets' usage keys. */
export const MESH_WIDE = '_';

/**
 * The key a budget's usage had before usage keys named a namespace, `w.<budget>.<window>` (read
 * once per window, to carry its usage over; see NatsBudgetStore.carriedOver).
 */
export function legacyUsageKey(budget: string, windowKey: string): string {
  return `w.${budget}.${windowKey}`;
}

const specKey = (spec: BudgetSpec, windowKey: string): string => usageKey(spec.name, windowKey, spec.namespace);

export interface NatsStoreLogger {
  warn(obj: Record<string, unknown>, msg: string): void;
}

export interface NatsStoreOptions {
  /** Unique per process; names this replica's leases. Default: host-pid-random. */
  replicaId?: string;
  clock?: () => number;
  logger?: NatsStoreLogger;
  /** How long before a window ends its successor's lease is taken (default 5 sync intervals, at least 10 s). */
  prefetchMs?: number;
  /** Give up connecting on start after this long (default 5000 ms). */
  connectTimeoutMs?: number;
  /** A budget nothing here has checked or charged for this long gives its lease back (default 5 min). */
  idleMs?: number;
  /**
   * Record the declared budgets in NATS for `tollgate budget status` (default true). Under
   * per-component credentials the control plane records them and authz may not.
   */
  recordDefinitions?: boolean;
}

interface Slot {
  spec: BudgetSpec;
  window: BudgetWindow;
  key: string;
  lease: LeaseRecord | null;
  /** Spent against `lease` (or without one) and not yet reported; may exceed the lease. */
  spent: number;
  /** What the KV entry said at the last successful sync (`at`: monotonic ms). */
  view: View | null;
  syncing: Promise<void> | null;
  again: boolean;
  /** The last sync could not get the lease it asked for: the budget is (nearly) used up. */
  starved: boolean;
  /** Spending rate in tokens per ms (monotonic time), for lease sizing. */
  rate: number;
  /** The largest single call refused because the lease was too small for it (0: none). */
  demand: number;
  periodSpent: number;
  periodStart: number;
  /** Report spending still covered by the lease at most this often (contention.ts). */
  reportEveryMs: number;
  /** Monotonic ms of this replica's last write to the key. */
  lastWrite: number;
  /** Monotonic ms of the last check, charge or prepare of this budget here (idle give-back). */
  lastUse: number;
  /**
   * While a write that shrinks the lease is in flight: calls may spend up to this (counting
   * `spent`), the size asked for, not the larger lease still held. Null otherwise.
   */
  ceiling: number | null;
  /**
   * The last sync lost every compare-and-set round to other replicas. Until a sync lands, only the
   * tick retries (not every call that finds the lease low), so a crowded key is not hammered.
   */
  contended: boolean;
}

/** What a slot last read of its KV entry. */
interface View {
  /** Committed by everyone but this slot's lease: spent, or leased to other replicas. */
  others: number;
  /** Replicas holding a lease on the key (fairShare). */
  holders: number;
  /** Monotonic ms of the read. */
  at: number;
}

function viewOf(state: UsageState, lease: LeaseRecord | null): View {
  const own = lease && lease.epoch === state.epoch ? lease.amount : 0;
  return { others: Math.max(0, state.committed - own), holders: state.holders, at: performance.now() };
}

export function defaultReplicaId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

function isConflict(e: unknown): boolean {
  if (e instanceof JetStreamApiError) {
    return e.code === JetStreamApiCodes.StreamWrongLastSequence || e.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown;
  }
  return /wrong last sequence/i.test((e as Error)?.message ?? '');
}

const dec = new TextDecoder();

function readState(e: KvEntry | null): UsageState {
  if (!e || e.operation !== 'PUT') return emptyUsageState();
  return decodeUsageState(dec.decode(e.value));
}

type BucketNames = Pick<NatsBudgetSettings, 'bucket' | 'configBucket' | 'timeoutMs'> & Partial<Pick<NatsBudgetSettings, 'region'>>;

/**
 * Creates the budget buckets (the control plane does, at start; authz has no right to). A regional
 * usage bucket (`s.region`) is placed in its region; the rest in `home` (the control plane's region).
 */
export async function createBudgetBuckets(nc: NatsConnection, s: BucketNames, replicas = 1, home: string | null = null): Promise<{ kv: KV; cfg: KV }> {
  // The JetStream client's own timeout bounds every KV call (get included), so a silent server
  // shows up as a failure after `timeoutMs`, not after the library default.
  const kvm = new Kvm(jetstream(nc, { timeout: s.timeoutMs }));
  const kv = await kvm.create(s.bucket, {
    history: 1, ttl: USAGE_TTL_MS, timeout: s.timeoutMs, replicas, description: 'Tollgate budget usage and leases, per budget and window', ...placedIn(s.region ?? home),
  });
  const cfg = await kvm.create(s.configBucket, { history: 1, timeout: s.timeoutMs, replicas, description: 'Tollgate budget limit overrides and declarations', ...placedIn(home) });
  return { kv, cfg };
}

function isNotFound(e: unknown): boolean {
  return /not found|10059/i.test((e as Error)?.message ?? '');
}

/**
 * Opens the budget buckets, creating them only when they are missing (standalone NATS). Under
 * per-component credentials authz may not create streams: then the message says who does.
 */
export async function openBudgetBuckets(nc: NatsConnection, s: BucketNames): Promise<{ kv: KV; cfg: KV }> {
  const kvm = new Kvm(jetstream(nc, { timeout: s.timeoutMs }));
  try {
    const open = async (bucket: string): Promise<KV> => {
      const kv = await kvm.open(bucket);
      // Read with direct gets when the bucket allows them (buckets made by createBudgetBuckets
      // do): the stream's own servers answer those, while a plain message get also goes through
      // the JetStream meta group, which a cut between regions leaves without a leader
      // (docs/multi-region.md). A direct get may come from a lagging replica: the compare-and-set
      // write then conflicts and is retried, as with any concurrent writer.
      const direct = (await kv.status()).streamInfo.config.allow_direct === true;
      return direct ? kvm.open(bucket, { allow_direct: true }) : kv;
    };
    const [kv, cfg] = await Promise.all([open(s.bucket), open(s.configBucket)]);
    return { kv, cfg };
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
  try {
    return await createBudgetBuckets(nc, s);
  } catch (e) {
    if (/permission/i.test((e as Error).message)) {
      throw new Error(`budget buckets ${s.bucket}/${s.configBucket} do not exist and this credential may not create them: start the control plane (it creates them) before authz`);
    }
    throw e;
  }
}

function readLimits(e: KvEntry | null): Record<string, number> {
  if (!e || e.operation !== 'PUT') return {};
  try {
    const raw: unknown = JSON.parse(dec.decode(e.value));
    const out: Record<string, number> = {};
    if (raw && typeof raw === 'object' && !Array.isArray(raw)) {
      for (const [k, v] of Object.entries(raw)) if (typeof v === 'number' && v > 0) out[k] = v;
    }
    return out;
  } catch {
    return {};
  }
}

/**
 * The connection budgets use: the process's link when given, else one opened from `settings.url`
 * (tools and tests against a NATS without users). Fails, saying what to do, when NATS is not there.
 */
export async function budgetConnection(settings: NatsBudgetSettings, link: NatsLink | null, name: string, timeoutMs: number): Promise<{ link: NatsLink; nc: NatsConnection; owned: boolean }> {
  const owned = link === null;
  const l = link ?? NatsLink.open({ servers: parseServers(settings.url, 'nats.url'), tls: null }, { name });
  try {
    return { link: l, nc: await l.ready(timeoutMs), owned };
  } catch (e) {
    if (owned) await l.close();
    throw new Error(`cannot reach NATS at ${l.settings.servers.join(',')} for shared budget state: ${(e as Error).message}. Start NATS (with JetStream, -js), fix the NATS URL (--nats, or nats.url in the budgets file), or remove the nats section to keep budget state in this process`);
  }
}

export class NatsBudgetStore implements BudgetStore {
  readonly replicaId: string;
  private readonly slots = new Map<string, Slot>();
  private limits: Record<string, number> = {};
  private connected = true;
  private failure: string | null = null;
  private unreachableSince: number | null = null;
  private ticker: NodeJS.Timeout | null = null;
  private closed = false;
  /** Per budget name: syncs that lost every compare-and-set round (contention, not unreachability). */
  private readonly contention = new Map<string, number>();
  private readonly clock: () => number;
  private readonly prefetchMs: number;
  private readonly idleMs: number;
  /** Wall ms of the last KV call that answered: a lease is spent without NATS for lease.ttl after it. */
  private lastContact: number;

  private constructor(
    private specs: BudgetSpec[],
    private readonly settings: NatsBudgetSettings,
    private readonly nc: NatsConnection,
    private readonly kv: KV,
    private readonly cfg: KV,
    private readonly opts: NatsStoreOptions,
    private readonly link: { close(): Promise<void> } | null,
  ) {
    this.replicaId = opts.replicaId ?? defaultReplicaId();
    this.clock = opts.clock ?? Date.now;
    this.lastContact = this.clock();
    this.prefetchMs = opts.prefetchMs ?? Math.max(settings.syncIntervalMs * 5, 10_000);
    this.idleMs = opts.idleMs ?? 300_000;
  }

  /**
   * Connects, opens the buckets and records the declared budgets; leases are taken on first use
   * (prepare). Fails (with what to do) when NATS is not reachable.
   */
  static async open(specs: BudgetSpec[], settings: NatsBudgetSettings, link: NatsLink | null, opts: NatsStoreOptions = {}): Promise<NatsBudgetStore> {
    const replicaId = opts.replicaId ?? defaultReplicaId();
    const conn = await budgetConnection(settings, link, `tollgate-authz ${replicaId}`, opts.connectTimeoutMs ?? 5000);
    const nc = conn.nc;
    try {
      const { kv, cfg } = await openBudgetBuckets(nc, settings);
      return await NatsBudgetStore.over({ nc, kv, cfg }, specs, settings, { ...opts, replicaId }, conn.owned ? conn.link : null);
    } catch (e) {
      if (conn.owned) await conn.link.close();
      throw e;
    }
  }

  /**
   * The part of open() after the buckets are open: records the declared budgets, reads the limit
   * overrides and starts the sync tick. Separate so the sync logic can be driven over a KV stand-in
   * (unit tests of contention) without a server; `link` is closed by close() when given.
   */
  static async over(parts: { nc: NatsConnection; kv: KV; cfg: KV }, specs: BudgetSpec[], settings: NatsBudgetSettings, opts: NatsStoreOptions = {}, link: { close(): Promise<void> } | null = null): Promise<NatsBudgetStore> {
    const store = new NatsBudgetStore(specs, settings, parts.nc, parts.kv, parts.cfg, opts, link);
    if (opts.recordDefinitions ?? true) await recordDefinitions(parts.cfg, specs);
    store.limits = readLimits(await parts.cfg.get(LIMITS_KEY));
    void store.watchStatus();
    store.ticker = setInterval(() => store.tick(), settings.syncIntervalMs);
    store.ticker.unref();
    return store;
  }

  /** The config bucket (limit overrides, declarations), for the definitions follower to share this connection. */
  get configBucket(): KV { return this.cfg; }

  /**
   * Replaces the budgets in force (published definitions changed). Budgets that stay keep their
   * leases and take the new limit at once; new ones are leased on first use; removed ones give
   * theirs back before this resolves.
   */
  async setSpecs(specs: BudgetSpec[]): Promise<void> {
    const byName = new Map(specs.map((x) => [x.name, x]));
    this.specs = specs;
    const pending: Promise<void>[] = [];
    for (const [key, s] of this.slots) {
      const next = byName.get(s.spec.name);
      if (next && next.window === s.spec.window && next.timezone === s.spec.timezone && next.namespace === s.spec.namespace) {
        s.spec = next;
        s.starved = false;
        continue;
      }
      this.slots.delete(key);
      if (this.healthy && (s.lease !== null || s.spent > 0)) pending.push(this.sync(s, true));
    }
    await Promise.all(pending);
  }

  /** NATS is reachable and the last KV operation worked. */
  get healthy(): boolean { return this.connected && this.failure === null; }

  /** The lease this replica holds on a budget's window (for tests and status). */
  leaseOf(name: string, windowKey: string): LeaseRecord | null {
    const spec = this.specs.find((x) => x.name === name);
    return spec ? this.slots.get(specKey(spec, windowKey))?.lease ?? null : null;
  }

  private limitOf(spec: BudgetSpec): number {
    return this.limits[spec.name] ?? spec.limit;
  }

  private slot(spec: BudgetSpec, window: BudgetWindow): Slot {
    const key = specKey(spec, window.key);
    let s = this.slots.get(key);
    if (!s) {
      s = {
        spec, window, key, lease: null, spent: 0, view: null, syncing: null, again: false, starved: false,
        demand: 0, rate: 0, periodSpent: 0, periodStart: performance.now(),
        reportEveryMs: this.settings.syncIntervalMs, lastWrite: 0, lastUse: performance.now(), contended: false, ceiling: null,
      };
      this.slots.set(key, s);
    }
    return s;
  }

  private unreachableReason(): string {
    const since = this.unreachableSince === null ? '' : ` since ${new Date(this.unreachableSince).toISOString()}`;
    return `shared budget state (NATS at ${this.settings.url || this.nc.getServer()}) is unreachable${since}${this.failure ? ` (${this.failure})` : ''}`;
  }

  /**
   * Takes this replica's first lease on a budget's window, if it holds none (first use, or given
   * back while idle): Check awaits it before a call that may charge the budget. At most
   * FIRST_LEASE_WAIT_MS: a sync that takes longer (a crowded key, a JetStream leader election)
   * goes on, and usage() says the budget is still loading meanwhile, so NATS never holds a Check
   * for long.
   */
  prepare(spec: BudgetSpec, window: BudgetWindow): Promise<void> | null {
    if (this.closed) return null;
    const s = this.slot(spec, window);
    s.lastUse = performance.now();
    // Ready: it holds a lease, or has read that the budget has nothing to lease, or the key is
    // crowded (the tick retries; calls are refused as "renewing" meanwhile rather than piling up).
    if (!this.healthy || (s.view !== null && (s.lease !== null || s.contended || this.usedUp(s)))) return null;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Math.min(this.settings.timeoutMs, FIRST_LEASE_WAIT_MS));
      void this.sync(s).finally(() => { clearTimeout(timer); resolve(); });
    });
  }

  usage(spec: BudgetSpec, window: BudgetWindow, now: number, need = 0): BudgetUsage {
    const limit = this.limitOf(spec);
    const s = this.slots.get(specKey(spec, window.key));
    if (s) s.lastUse = performance.now();
    const unreachable = !this.healthy;
    if (unreachable && this.settings.onNatsUnavailable === 'fail-closed') {
      return {
        limit, used: s?.view ? s.view.others + s.spent : 0, spendable: 0,
        unavailable: `budget "${spec.name}": ${this.unreachableReason()}, and budgets fail closed (nats.onNatsUnavailable: fail-closed); calls under this budget are refused until NATS is back`,
      };
    }
    if (!s || !s.view) {
      if (!s && !this.closed) this.kick(this.slot(spec, window));
      return {
        limit, used: 0, spendable: 0,
        unavailable: unreachable
          ? `budget "${spec.name}": ${this.unreachableReason()}, and this replica holds no lease for the ${spec.window} ${window.key}`
          : `budget "${spec.name}": this authz replica is still loading the budget's ${spec.window} ${window.key} from NATS; retry in a moment`,
      };
    }
    const used = s.view.others + s.spent;
    // While NATS answers a lease has no end; cut off, it is spent for at most lease.ttl.
    const expiresAt = this.lastContact + this.settings.lease.ttlMs;
    const leaseLive = s.lease !== null && (!unreachable || now < expiresAt);
    const spendable = leaseLive ? Math.min(s.lease!.amount, s.ceiling ?? Number.POSITIVE_INFINITY) - s.spent : 0;
    if (need > spendable && need > s.demand) {
      // A call larger than this replica's lease: the next lease must hold it, or it never passes.
      s.demand = need;
      s.starved = false;
      // Nothing left to lease: the tick's re-read notices when there is again, and the next
      // lease is sized for this call then.
      if (!this.usedUp(s)) this.kick(s);
    }
    this.maybeRefill(s, spendable);
    if (unreachable && spendable <= 0 && used < limit) {
      const why = s.lease === null ? 'holds no lease' : leaseLive ? 'has used up its lease' : `let its lease expire at ${new Date(expiresAt).toISOString()}, lease.ttl after NATS last answered`;
      return {
        limit, used, spendable: 0,
        unavailable: `budget "${spec.name}": ${this.unreachableReason()}, and this replica ${why} (nats.onNatsUnavailable: use-leases-until-expiry); calls under this budget are refused until NATS is back`,
      };
    }
    return { limit, used, spendable };
  }

  spend(spec: BudgetSpec, window: BudgetWindow, tokens: number): void {
    if (!(tokens > 0)) return;
    const s = this.slot(spec, window);
    s.lastUse = performance.now();
    s.spent += tokens;
    s.periodSpent += tokens;
    this.maybeRefill(s, s.lease ? s.lease.amount - s.spent : 0);
  }

  /** Renews a lease that runs low before it runs out, unless the budget has nothing more to give. */
  private maybeRefill(s: Slot, left: number): void {
    if (!s.starved && !s.syncing && !s.contended && !this.usedUp(s) && left < this.targetFor(s) / 2) this.kick(s);
  }

  /**
   * As of the last read, the budget has nothing left to lease, and this slot has no lease and
   * nothing to report: a write could only say so again. Such a slot re-reads the key instead
   * (tick), and writes once the read shows room (a reset, a raised limit, a lease given back), so
   * a used-up budget costs its replicas reads, not compare-and-set rounds against each other.
   */
  private usedUp(s: Slot): boolean {
    return s.view !== null && s.lease === null && s.spent === 0 && s.view.others >= this.limitOf(s.spec);
  }

  private wantFor(s: Slot): number {
    const size = leaseSize(this.limitOf(s.spec), this.settings.lease, s.rate, this.settings.syncIntervalMs);
    return Math.max(size, s.demand);
  }

  /** What a lease keeps past the fair share: a call larger than the usual lease, or the spending rate (within lease.max). */
  private keepFor(s: Slot): number {
    return Math.max(s.demand, Math.min(this.settings.lease.max, Math.ceil(s.rate * this.settings.syncIntervalMs * 2)));
  }

  /**
   * The lease this slot should hold: wantFor(), within the fair share of the replicas the last read
   * showed holding leases (settle() applies the same rule to the entry it writes).
   */
  private targetFor(s: Slot): number {
    const limit = this.limitOf(s.spec);
    const holders = (s.view?.holders ?? 0) + (s.lease ? 0 : 1);
    return Math.min(this.wantFor(s), Math.max(this.keepFor(s), fairShare(limit, holders)));
  }

  /**
   * The lease is more than twice its fair share, and what is left unleased would not give a
   * fair share to two more replicas: shrink it (syncOnce). While the budget has room to spare,
   * leases granted when fewer replicas held one are left alone, so a start-up of many replicas
   * does not turn into a round of shrinking writes on the key they all share.
   */
  private shrinkDue(s: Slot, left: number, target: number): boolean {
    if (s.lease === null || s.view === null || left <= 2 * target) return false;
    const unleased = this.limitOf(s.spec) - s.view.others - s.lease.amount;
    return unleased < 2 * target;
  }

  /** Starts a sync of one slot now, or right after the one under way. */
  private kick(s: Slot): void {
    // While disconnected a KV call could only wait for its timeout; reconnecting kicks every slot.
    if (this.closed || !this.connected) return;
    if (s.syncing) {
      s.again = true;
      return;
    }
    void this.sync(s);
  }

  private sync(s: Slot, giveBack = false): Promise<void> {
    // A give-back must not be answered by a sync (or re-read) already under way that keeps the lease.
    if (s.syncing) return giveBack ? s.syncing.then(() => this.sync(s, true)) : s.syncing;
    s.syncing = (async () => {
      try {
        do {
          s.again = false;
          try {
            // Lost to other writers: retrying at once would only crowd the key more; the tick retries.
            if (!(await this.syncOnce(s, giveBack))) break;
          } catch (e) {
            this.noteFailure(e as Error, s);
            // Asked again meanwhile (NATS came back): try again now rather than at the next tick.
            if (!s.again || !this.connected) break;
          }
        } while (s.again && !this.closed && !s.starved);
      } finally {
        s.syncing = null;
      }
    })();
    return s.syncing;
  }

  /** One report-and-renew. True when it landed; false when other replicas won every round, or on close. */
  private async syncOnce(s: Slot, giveBack: boolean): Promise<boolean> {
    // Rates and staleness run on the monotonic clock; the injected clock is wall time, for lease
    // expiry and windows, which all replicas must agree on.
    const mono = performance.now();
    const elapsed = mono - s.periodStart;
    // Over at least a sync interval: a lease taken on a first call and refilled a moment later
    // would otherwise measure that call's tokens over a millisecond, a rate that asks for the
    // whole budget.
    if (elapsed >= this.settings.syncIntervalMs) {
      s.rate = s.rate === 0 ? s.periodSpent / elapsed : (s.rate + s.periodSpent / elapsed) / 2;
      s.periodSpent = 0;
      s.periodStart = mono;
    }
    const held = s.lease;
    const snapSpent = s.spent;
    // Ask for at least the unspent rest of the current lease: calls keep spending it while this
    // write is in flight, and the new lease must cover that (see docs/budgets.md).
    const heldUnspent = held ? Math.max(0, held.amount - snapSpent) : 0;
    let want = giveBack ? 0 : Math.max(this.wantFor(s), heldUnspent);
    let keep = Math.max(this.keepFor(s), heldUnspent);
    const target = this.targetFor(s);
    if (!giveBack && this.shrinkDue(s, heldUnspent, target)) {
      // Calls spend at most the new size while the write is in flight, so the new lease covers them.
      s.ceiling = snapSpent + target;
      want = keep = target;
    }
    try {
      return await this.writeLease(s, giveBack, held, snapSpent, want, keep);
    } finally {
      s.ceiling = null;
    }
  }

  private async writeLease(s: Slot, giveBack: boolean, held: LeaseRecord | null, snapSpent: number, want: number, keep: number): Promise<boolean> {
    const rounds = giveBack ? MAX_GIVE_BACK_ROUNDS : MAX_CAS_ROUNDS;
    for (let round = 0; round < rounds; round++) {
      if (round > 0) await pause(conflictBackoffMs(round));
      if (this.closed && !giveBack) return false;
      const entry = await this.kv.get(s.key);
      const now = this.clock();
      const base = entry ? readState(entry) : await this.carriedOver(s);
      const r = settle(base, {
        held, spent: snapSpent, want, keep, limit: this.limitOf(s.spec), now, newEpoch: randomBytes(6).toString('base64url'), fresh: !entry,
      });
      try {
        const value = encodeUsageState(r.state);
        if (entry) await this.kv.update(s.key, value, entry.revision);
        else await this.kv.create(s.key, value);
      } catch (e) {
        if (isConflict(e)) continue;
        // The write may have landed with its reply lost: continue from what is safe either way.
        s.spent = unknownOutcome(held, snapSpent, s.spent - snapSpent);
        s.lease = null;
        throw e;
      }
      s.lease = r.grant;
      s.spent -= snapSpent;
      if (r.grant && r.grant.amount >= s.demand) s.demand = 0;
      s.view = viewOf(r.state, r.grant);
      // Starved: it got less than it asked for because nothing more was left (not because of the fair share).
      s.starved = !giveBack && (r.grant?.amount ?? 0) < want && r.available <= 0;
      s.lastWrite = performance.now();
      s.reportEveryMs = nextReportInterval(s.reportEveryMs, round, false, this.settings.syncIntervalMs, this.settings.lease.ttlMs / 3);
      s.contended = false;
      this.noteSuccess();
      return true;
    }
    // Other replicas won every round. That is not NATS being unreachable (every get and update
    // answered): the store stays healthy. Nothing was written, so the KV entry still counts the
    // lease this slot holds as committed: calls may spend what is left of it until it is used up
    // (then they are refused as "renewing its share"), exactly as if this sync had not started.
    // No new tokens are taken, and the unreported spending stays in `spent` for the next sync that
    // lands. The slot reports less often and the tick retries. Nobody writes another replica's
    // lease off, so waiting costs this one nothing it holds.
    s.reportEveryMs = nextReportInterval(s.reportEveryMs, rounds, true, this.settings.syncIntervalMs, this.settings.lease.ttlMs / 3);
    this.contention.set(s.spec.name, (this.contention.get(s.spec.name) ?? 0) + 1);
    if (!s.contended || giveBack) {
      this.opts.logger?.warn({ key: s.key, rounds, giveBack }, giveBack
        ? 'budget usage key: other replicas won every compare-and-set round; the unspent rest of the lease could not be given back and stays counted as spent'
        : 'budget usage key: other replicas won every compare-and-set round; keeping the current lease and retrying later');
    }
    s.contended = true;
    return false;
  }

  /**
   * Re-reads a slot's key without writing it: keeps the view of what others used fresh when this
   * replica has nothing to report, at no cost to the replicas that do write.
   */
  private refresh(s: Slot): void {
    if (s.syncing || this.closed) return;
    s.syncing = (async () => {
      try {
        const entry = await this.kv.get(s.key);
        if (entry) s.view = viewOf(readState(entry), s.lease);
        this.noteSuccess();
      } catch (e) {
        this.noteFailure(e as Error, s);
      } finally {
        s.syncing = null;
      }
      // Asked for a real sync meanwhile (a lease ran low): do it now.
      if (s.again) this.kick(s);
    })();
  }

  /** Syncs that lost every compare-and-set round (contention, not unreachability), in total. */
  get contentionCount(): number {
    let n = 0;
    for (const v of this.contention.values()) n += v;
    return n;
  }

  /** The same, per budget name (live: the metrics read it at scrape). */
  get leaseContention(): ReadonlyMap<string, number> { return this.contention; }

  /**
   * The first state of a budget's key in a window. Before usage keys named a namespace, the same
   * budget's window lived at `w.<budget>.<window>`: what it says was used, and every lease it still
   * lists (counted as spent, as a lease never given back is), carries over, so an upgrade never
   * starts a window's spend again from zero; the log says when it happens. A legacy entry that
   * cannot be read or decoded fails the sync (the store then counts NATS as unreachable and
   * budgets fail closed), never a silent zero.
   */
  private async carriedOver(s: Slot): Promise<UsageState> {
    const legacyKey = legacyUsageKey(s.spec.name, s.window.key);
    const carried = readState(await this.kv.get(legacyKey)).committed;
    if (carried === 0) return emptyUsageState();
    this.opts.logger?.warn({ budget: s.spec.name, from: legacyKey, to: s.key, tokens: carried }, 'budget usage carried over from the key used before usage keys named a namespace');
    return { ...emptyUsageState(), committed: carried, reported: carried };
  }

  private noteFailure(e: Error, s: Slot): void {
    if (this.failure === null) this.opts.logger?.warn({ key: s.key, err: e.message }, 'budget sync with NATS failed');
    this.failure = e.message;
    this.unreachableSince ??= this.clock();
  }

  private noteSuccess(): void {
    this.lastContact = this.clock();
    if (this.failure !== null && this.connected) this.unreachableSince = null;
    this.failure = null;
  }

  private async watchStatus(): Promise<void> {
    try {
      for await (const st of this.nc.status()) {
        if (st.type === 'disconnect') {
          this.connected = false;
          this.unreachableSince ??= this.clock();
          this.opts.logger?.warn({ server: st.server }, 'lost the NATS connection that holds shared budget state');
        } else if (st.type === 'reconnect') {
          this.connected = true;
          this.failure = null;
          this.unreachableSince = null;
          for (const s of this.slots.values()) { s.starved = false; this.kick(s); }
        }
      }
    } catch {
      // The status iterator ends with the connection.
    }
  }

  /** Every sync interval: refresh overrides, renew and report, take next windows' leases, retire old ones. */
  private tick(): void {
    if (this.closed || !this.connected) return;
    const now = this.clock();
    void this.cfg.get(LIMITS_KEY).then((e) => { this.limits = readLimits(e); }, () => undefined);
    const mono = performance.now();
    for (const s of [...this.slots.values()]) {
      // A budget in use gets its next window's lease shortly before rollover.
      if (s.window.end > now && s.window.end - now <= this.prefetchMs && mono - s.lastUse < this.idleMs) {
        this.slot(s.spec, nextWindow(s.window, s.spec.timezone)).lastUse = s.lastUse;
      }
    }
    for (const [key, s] of this.slots) {
      if (s.window.end <= now || mono - s.lastUse >= this.idleMs) {
        // Past windows, and budgets no caller here has used for idleMs: report the last spending
        // and give the lease back, then forget the slot (a later use leases it again).
        if (s.lease === null && s.spent === 0) this.slots.delete(key);
        else if (!s.syncing) void this.sync(s, true);
        continue;
      }
      s.starved = false;
      if (s.syncing) continue;
      const left = s.lease ? s.lease.amount - s.spent : 0;
      const target = this.targetFor(s);
      const low = left < target / 2 || this.shrinkDue(s, left, target);
      if (this.usedUp(s)) {
        // A read a tick (the entry is two counters): a lease given back, shrunk or a raised limit
        // is found within one sync interval.
        if (mono - s.view!.at >= this.settings.syncIntervalMs * 0.9) this.refresh(s);
        continue;
      }
      const reportDue = s.spent > 0 && mono - s.lastWrite >= s.reportEveryMs;
      if (!s.view || reportDue || low) void this.sync(s);
      else if (mono - s.view.at >= this.settings.syncIntervalMs * 5) this.refresh(s);
    }
  }

  /** Reports what was spent and gives every lease back, then disconnects. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = null;
    if (this.healthy) {
      for (const s of this.slots.values()) if (s.syncing) await s.syncing.catch(() => undefined);
      await Promise.all([...this.slots.values()].map((s) => this.sync(s, true)));
    }
    await this.link?.close();
  }

  /**
   * Drops the NATS connection without reporting or giving anything back, as a crash would: the
   * leases stay committed, as spent. For failure drills and tests.
   */
  async abandon(): Promise<void> {
    this.closed = true;
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = null;
    // A shared connection stays up for the process's other users; only our own link is dropped.
    await this.link?.close();
  }
}

/**
 * How one budget stands in its current window, from the shared usage bucket: tokens replicas
 * reported used, and the rest of what is committed: leases out now, spending inside them not yet
 * reported, and leases of replicas that stopped without giving them back (spent, for the budget).
 */
export async function budgetStatusRow(kv: KV, spec: BudgetSpec, limits: Record<string, number>, now: number): Promise<BudgetStatusRow> {
  const w = windowAt(spec.window, spec.timezone, now);
  // Until a replica first writes the key, a window begun before the upgrade is still at the old one.
  const e = (await kv.get(specKey(spec, w.key))) ?? (await kv.get(legacyUsageKey(spec.name, w.key)));
  const st = readState(e);
  const used = Math.min(st.reported, st.committed);
  const leased = st.committed - used;
  const limit = limits[spec.name] ?? spec.limit;
  return {
    name: spec.name, scope: scopeRecord(spec), window: spec.window, windowKey: w.key, timezone: spec.timezone, action: spec.action,
    limit, declaredLimit: spec.limit, used, leased, remaining: Math.max(0, limit - st.committed), resetsAt: new Date(w.end).toISOString(),
  };
}

/** The limit overrides `tollgate budget set` wrote (budget name → tokens). */
export async function readLimitOverrides(cfg: KV): Promise<Record<string, number>> {
  return readLimits(await cfg.get(LIMITS_KEY));
}

/** `tollgate budget status/set/reset` against the shared state in NATS. */
export class NatsBudgetAdmin implements BudgetAdmin {
  private constructor(private readonly link: NatsLink | null, private readonly kv: KV, private readonly cfg: KV, private readonly specs: BudgetSpec[] | null) {}

  /** `link`: the caller's connection (with its credential); null: connect to settings.url without TLS. */
  static async open(settings: NatsBudgetSettings, specs: BudgetSpec[] | null = null, link: NatsLink | null = null, closeLink = false): Promise<NatsBudgetAdmin> {
    const conn = await budgetConnection(settings, link, 'tollgate budget', settings.timeoutMs);
    try {
      const { kv, cfg } = await openBudgetBuckets(conn.nc, settings);
      return new NatsBudgetAdmin(conn.owned || closeLink ? conn.link : null, kv, cfg, specs);
    } catch (e) {
      if (conn.owned) await conn.link.close();
      throw e;
    }
  }

  private async known(): Promise<BudgetSpec[]> {
    if (this.specs) return this.specs;
    const e = await this.cfg.get(SPECS_KEY);
    if (!e || e.operation !== 'PUT') return [];
    try {
      const raw: unknown = JSON.parse(dec.decode(e.value));
      return Array.isArray(raw) ? (raw as BudgetSpec[]) : [];
    } catch {
      return [];
    }
  }

  private async spec(name: string): Promise<BudgetSpec> {
    const specs = await this.known();
    const s = specs.find((x) => x.name === name);
    if (!s) {
      throw new Error(specs.length
        ? `no budget named "${name}" in NATS (known: ${specs.map((x) => x.name).join(', ')})`
        : 'no budgets recorded in NATS yet: start authz with a budgets file once, or pass --budgets FILE');
    }
    return s;
  }

  async status(now: number): Promise<BudgetStatusRow[]> {
    const limits = readLimits(await this.cfg.get(LIMITS_KEY));
    const rows: BudgetStatusRow[] = [];
    for (const spec of await this.known()) rows.push(await budgetStatusRow(this.kv, spec, limits, now));
    return rows;
  }

  private async casUpdate(key: string, f: (e: KvEntry | null) => string): Promise<void> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const bucket = key.startsWith('w.') ? this.kv : this.cfg;
      const e = await bucket.get(key);
      try {
        if (e) await bucket.update(key, f(e), e.revision);
        else await bucket.create(key, f(null));
        return;
      } catch (err) {
        if (!isConflict(err)) throw err;
      }
    }
    throw new Error(`could not update ${key}: too many concurrent writers, try again`);
  }

  async setLimit(name: string, limit: number): Promise<void> {
    await this.spec(name);
    await this.casUpdate(LIMITS_KEY, (e) => JSON.stringify({ ...readLimits(e), [name]: limit }));
  }

  async reset(name: string, now: number): Promise<void> {
    const spec = await this.spec(name);
    const w = windowAt(spec.window, spec.timezone, now);
    await this.casUpdate(specKey(spec, w.key), (e) => encodeUsageState(resetState(readState(e), now)));
  }

  async close(): Promise<void> {
    await this.link?.close();
  }
}

/** Writes the declared budgets where `tollgate budget status` finds them. */
export async function recordDefinitions(cfg: KV, specs: BudgetSpec[]): Promise<void> {
  await cfg.put(SPECS_KEY, JSON.stringify(specs));
}

/** The control plane's side: opens the buckets (creating missing ones) and records the declared budgets. */
export async function publishBudgetDefinitions(nc: NatsConnection, s: BucketNames, specs: BudgetSpec[]): Promise<void> {
  // Opened first: provisionStreams made them with the mesh's replicas and placement, which a
  // create with other settings would be refused for.
  const { cfg } = await openBudgetBuckets(nc, s);
  await recordDefinitions(cfg, specs);
}
