import { readFileSync } from 'node:fs';
import { regionalBucket } from '../nats/budget-keys.js';
import { isRegionName } from '../nats/placement.js';
import { parseServers } from '../nats/settings.js';
import { parseYaml } from '../util/yaml-lazy.js';
import { DEFAULT_ENCODING, ENCODING_NAMES, isEncodingName, type EncodingName } from './tokens.js';
import { assertTimeZone, WINDOW_KINDS, type WindowKind } from './window.js';

/**
 * Budget declarations (YAML). Every field is documented in docs/budgets.md. Errors name the file
 * and the field (`budgets.yaml: budgets[1].window: ...`) and say what would be accepted.
 */

export const SCOPE_FIELDS = ['team', 'agent', 'sub', 'server', 'tool'] as const;
export type ScopeField = (typeof SCOPE_FIELDS)[number];
export type BudgetScope = Partial<Record<ScopeField, string>>;

export type BudgetAction = 'deny' | 'warn';
export type OnNatsUnavailable = 'fail-closed' | 'use-leases-until-expiry';
/**
 * global: one usage bucket for the whole mesh (one region holds it, the others reach it across the
 * gateway); region: a usage bucket per region, placed in it (docs/multi-region.md).
 */
export type BudgetRegionScope = 'global' | 'region';

export { regionalBucket };

export interface BudgetSpec {
  name: string;
  /** Every field given must equal the caller's; an empty scope matches every call. */
  scope: BudgetScope;
  limit: number;
  window: WindowKind;
  /** IANA zone for day and month windows. */
  timezone: string;
  action: BudgetAction;
  tokenizer: EncodingName;
  /**
   * The Kubernetes namespace that owns the budget (TokenBudget objects). Its usage keys are then
   * `w.<namespace>.<name>.<window>`, so a NATS permission can give each namespace's sidecars its
   * own keys only; unset: a mesh-wide budget, `w._.<name>.<window>`.
   */
  namespace?: string;
}

export interface LeaseSettings {
  /** A lease is this fraction of the limit ... */
  fraction: number;
  /** ... but at least this many tokens ... */
  min: number;
  /** ... and at most this many. */
  max: number;
  /** A lease not renewed for this long is void (crashed or cut-off replica). */
  ttlMs: number;
}

export interface NatsBudgetSettings {
  /** Servers for tools that connect on their own; '' when the process's NATS connection is used. */
  url: string;
  /**
   * KV bucket with usage and leases, one key per budget and window. Under `scope: region` this is
   * already the region's bucket (`<bucket>_<region>`), placed in that region's NATS cluster.
   */
  bucket: string;
  scope: BudgetRegionScope;
  /** This process's region (its NATS cluster name) under `scope: region`; null under global. */
  region: string | null;
  /** KV bucket with limit overrides (`tollgate budget set`) and the declared budgets. */
  configBucket: string;
  onNatsUnavailable: OnNatsUnavailable;
  lease: LeaseSettings;
  /** How often each replica reports its spending and renews its leases. */
  syncIntervalMs: number;
  /** Give up on a KV operation after this long (the replica then counts NATS as unreachable). */
  timeoutMs: number;
  /**
   * Also apply the budget definitions the control plane publishes (from TokenBudget objects) in
   * the config bucket, live, next to the ones in this file.
   */
  definitions: boolean;
  /**
   * The Kubernetes namespace this authz serves (injected sidecars). Published budgets of other
   * namespaces are not applied here: this replica neither leases nor charges them, and its NATS
   * credential may not write their usage keys. null: every published budget (shared authz).
   */
  namespace: string | null;
}

export interface BudgetConfig {
  file: string;
  budgets: BudgetSpec[];
  /** Shared state in NATS JetStream; null: in-process state persisted under the state directory. */
  nats: NatsBudgetSettings | null;
}

export const DEFAULT_NATS_SETTINGS: Omit<NatsBudgetSettings, 'url'> = {
  bucket: 'tollgate_budgets',
  scope: 'global',
  region: null,
  configBucket: 'tollgate_budget_config',
  onNatsUnavailable: 'fail-closed',
  lease: { fraction: 0.01, min: 1000, max: 50_000, ttlMs: 30_000 },
  syncIntervalMs: 1000,
  timeoutMs: 2000,
  definitions: false,
  namespace: null,
};

/** A Kubernetes namespace name (DNS label): one NATS subject token, never `*`, `>` or a dot. */
export const NAMESPACE_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export class BudgetConfigError extends Error {
  constructor(readonly file: string, readonly field: string, problem: string) {
    super(`${file}: ${field ? `${field}: ` : ''}${problem}`);
    this.name = 'BudgetConfigError';
  }
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Budget names become NATS KV key tokens and file keys: keep them to a safe alphabet. */
export const BUDGET_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

class Reader {
  constructor(readonly file: string) {}

  fail(field: string, problem: string): never {
    throw new BudgetConfigError(this.file, field, problem);
  }

  known(field: string, o: Obj, allowed: readonly string[]): void {
    for (const k of Object.keys(o)) {
      if (!allowed.includes(k)) this.fail(field ? `${field}.${k}` : k, `unknown field (expected one of: ${allowed.join(', ')})`);
    }
  }

  str(field: string, v: unknown): string {
    if (typeof v !== 'string' || v.trim() === '') this.fail(field, `must be a non-empty string, got ${describe(v)}`);
    return v.trim();
  }

  oneOf<T extends string>(field: string, v: unknown, allowed: readonly T[]): T {
    const s = this.str(field, v);
    if (!(allowed as readonly string[]).includes(s)) this.fail(field, `must be one of ${allowed.join(', ')}, got "${s}"`);
    return s as T;
  }

  int(field: string, v: unknown, min: number): number {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) this.fail(field, `must be a whole number ≥ ${min}, got ${describe(v)}`);
    return v;
  }

  fraction(field: string, v: unknown): number {
    if (typeof v !== 'number' || !(v > 0 && v <= 1)) this.fail(field, `must be a number in (0, 1], got ${describe(v)}`);
    return v;
  }

  duration(field: string, v: unknown): number {
    if (typeof v === 'number' && v > 0) return v * 1000;
    const m = typeof v === 'string' ? /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(v.trim()) : null;
    if (!m) this.fail(field, `must be a duration such as 500ms, 30s, 5m (or a number of seconds), got ${describe(v)}`);
    const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
    const ms = Number(m[1]) * mult;
    if (!(ms > 0)) this.fail(field, 'must be longer than 0');
    return ms;
  }
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (typeof v === 'string') return `"${v}"`;
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return String(v);
}

function parseScope(r: Reader, field: string, v: unknown): BudgetScope {
  if (v === undefined || v === null) return {};
  if (!isObj(v)) r.fail(field, `must be a mapping of ${SCOPE_FIELDS.join(', ')} to values, got ${describe(v)}`);
  r.known(field, v, SCOPE_FIELDS);
  const scope: BudgetScope = {};
  for (const f of SCOPE_FIELDS) {
    if (v[f] === undefined) continue;
    const value = v[f];
    // YAML turns `team: 42` into a number; a scope value is an identity string.
    scope[f] = typeof value === 'number' ? String(value) : r.str(`${field}.${f}`, value);
  }
  return scope;
}

function parseBudget(r: Reader, field: string, v: unknown): BudgetSpec {
  if (!isObj(v)) r.fail(field, `must be a mapping with name, scope, limit, window, got ${describe(v)}`);
  r.known(field, v, ['name', 'scope', 'limit', 'window', 'timezone', 'action', 'tokenizer', 'description', 'namespace']);
  const name = r.str(`${field}.name`, v.name);
  if (!BUDGET_NAME.test(name)) r.fail(`${field}.name`, `"${name}" must be 1-64 letters, digits, "-" or "_", starting with a letter or digit`);
  if (v.limit === undefined) r.fail(`${field}.limit`, 'is required (tokens per window)');
  const limit = r.int(`${field}.limit`, v.limit, 1);
  if (v.window === undefined) r.fail(`${field}.window`, `is required (${WINDOW_KINDS.join(', ')})`);
  const window = r.oneOf(`${field}.window`, v.window, WINDOW_KINDS);
  const timezone = v.timezone === undefined ? 'UTC' : r.str(`${field}.timezone`, v.timezone);
  try {
    assertTimeZone(timezone);
  } catch {
    r.fail(`${field}.timezone`, `"${timezone}" is not an IANA time zone (e.g. UTC, Europe/Berlin, America/New_York)`);
  }
  const action = v.action === undefined ? 'deny' : r.oneOf<BudgetAction>(`${field}.action`, v.action, ['deny', 'warn']);
  const tokenizer = v.tokenizer === undefined ? DEFAULT_ENCODING : r.str(`${field}.tokenizer`, v.tokenizer);
  if (!isEncodingName(tokenizer)) r.fail(`${field}.tokenizer`, `must be one of ${ENCODING_NAMES.join(', ')}, got "${tokenizer}"`);
  if (v.description !== undefined && typeof v.description !== 'string') r.fail(`${field}.description`, 'must be a string');
  const namespace = v.namespace === undefined ? undefined : r.str(`${field}.namespace`, v.namespace);
  if (namespace !== undefined && !NAMESPACE_NAME.test(namespace)) r.fail(`${field}.namespace`, `"${namespace}" is not a Kubernetes namespace name (lowercase letters, digits and "-", at most 63)`);
  return { name, scope: parseScope(r, `${field}.scope`, v.scope), limit, window, timezone, action, tokenizer, ...(namespace !== undefined ? { namespace } : {}) };
}

function parseNats(r: Reader, v: unknown): NatsBudgetSettings | null {
  if (v === undefined || v === null) return null;
  if (!isObj(v)) r.fail('nats', `must be a mapping (url, bucket, lease, …), got ${describe(v)}`);
  r.known('nats', v, ['url', 'bucket', 'configBucket', 'onNatsUnavailable', 'lease', 'syncInterval', 'timeout', 'definitions', 'scope', 'region', 'namespace']);
  if (v.definitions !== undefined && typeof v.definitions !== 'boolean') r.fail('nats.definitions', `must be true or false, got ${describe(v.definitions)}`);
  const d = DEFAULT_NATS_SETTINGS;
  // Optional: authz connects once, with --nats; a url here must then name the same servers.
  const url = v.url === undefined ? '' : r.str('nats.url', v.url);
  if (url !== '') {
    try {
      parseServers(url, 'nats.url');
    } catch (e) {
      r.fail('nats.url', (e as Error).message);
    }
  }
  const bucketName = (field: string, x: unknown, dflt: string): string => {
    if (x === undefined) return dflt;
    const s = r.str(field, x);
    if (!/^[A-Za-z0-9_-]+$/.test(s)) r.fail(field, `"${s}" may only hold letters, digits, "-" and "_" (a JetStream KV bucket name)`);
    return s;
  };
  const lease = { ...d.lease };
  if (v.lease !== undefined) {
    if (!isObj(v.lease)) r.fail('nats.lease', `must be a mapping (fraction, min, max, ttl), got ${describe(v.lease)}`);
    r.known('nats.lease', v.lease, ['fraction', 'min', 'max', 'ttl']);
    if (v.lease.fraction !== undefined) lease.fraction = r.fraction('nats.lease.fraction', v.lease.fraction);
    if (v.lease.min !== undefined) lease.min = r.int('nats.lease.min', v.lease.min, 1);
    if (v.lease.max !== undefined) lease.max = r.int('nats.lease.max', v.lease.max, 1);
    if (v.lease.ttl !== undefined) lease.ttlMs = r.duration('nats.lease.ttl', v.lease.ttl);
    if (lease.min > lease.max) r.fail('nats.lease', `min (${lease.min}) is larger than max (${lease.max})`);
  }
  const syncIntervalMs = v.syncInterval === undefined ? d.syncIntervalMs : r.duration('nats.syncInterval', v.syncInterval);
  if (syncIntervalMs * 3 > lease.ttlMs) r.fail('nats.syncInterval', `must be at most a third of nats.lease.ttl (${lease.ttlMs} ms) so a lease is renewed well before it runs out`);
  const { scope, region } = parseRegionScope(r, v);
  const bucket = bucketName('nats.bucket', v.bucket, d.bucket);
  return {
    url,
    bucket: region === null ? bucket : regionalBucket(bucket, region),
    scope,
    region,
    configBucket: bucketName('nats.configBucket', v.configBucket, d.configBucket),
    onNatsUnavailable: v.onNatsUnavailable === undefined ? d.onNatsUnavailable : r.oneOf<OnNatsUnavailable>('nats.onNatsUnavailable', v.onNatsUnavailable, ['fail-closed', 'use-leases-until-expiry']),
    lease,
    syncIntervalMs,
    timeoutMs: v.timeout === undefined ? d.timeoutMs : r.duration('nats.timeout', v.timeout),
    definitions: v.definitions === true,
    namespace: parseNamespace(r, v.namespace),
  };
}

function parseNamespace(r: Reader, v: unknown): string | null {
  if (v === undefined || v === null) return null;
  const ns = r.str('nats.namespace', v);
  if (!NAMESPACE_NAME.test(ns)) r.fail('nats.namespace', `"${ns}" is not a Kubernetes namespace name (lowercase letters, digits and "-", at most 63)`);
  return ns;
}

/** `scope: region` needs the region this process runs in; `region` without it would be ignored, so it is refused. */
function parseRegionScope(r: Reader, v: Obj): { scope: BudgetRegionScope; region: string | null } {
  const scope = v.scope === undefined ? 'global' : r.oneOf<BudgetRegionScope>('nats.scope', v.scope, ['global', 'region']);
  if (scope === 'global') {
    if (v.region !== undefined) r.fail('nats.region', 'is only read with nats.scope: region (under global budgets every region shares one bucket)');
    return { scope, region: null };
  }
  if (v.region === undefined) r.fail('nats.region', 'is required with nats.scope: region: the NATS cluster name of the region this authz runs in');
  const region = r.str('nats.region', v.region);
  if (!isRegionName(region)) r.fail('nats.region', `"${region}" must be 1-32 letters, digits or "-", starting with a letter or digit (a NATS cluster name)`);
  return { scope, region };
}

export function parseBudgetConfig(text: string, file = '<budgets>'): BudgetConfig {
  const r: Reader = new Reader(file);
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    r.fail('', `not valid YAML: ${(e as Error).message}`);
  }
  if (doc === null || doc === undefined) return { file, budgets: [], nats: null };
  if (!isObj(doc)) r.fail('', `must be a mapping with a "budgets" list, got ${describe(doc)}`);
  r.known('', doc, ['budgets', 'nats']);
  return { file, budgets: readBudgetList(r, doc.budgets ?? []), nats: parseNats(r, doc.nats) };
}

function readBudgetList(r: Reader, list: unknown): BudgetSpec[] {
  if (!Array.isArray(list)) r.fail('budgets', `must be a list of budgets, got ${describe(list)}`);
  const budgets = list.map((b, i) => parseBudget(r, `budgets[${i}]`, b));
  const seen = new Map<string, number>();
  budgets.forEach((b, i) => {
    const prev = seen.get(b.name);
    if (prev !== undefined) r.fail(`budgets[${i}].name`, `"${b.name}" is already used by budgets[${prev}]; names must be unique`);
    seen.set(b.name, i);
  });
  return budgets;
}

/**
 * Budget declarations in the file's shape (a list of {name, scope, limit, window, ...}) from any
 * source, checked field by field; `source` names it in errors (e.g. the NATS key they came from).
 */
export function parseBudgetList(list: unknown, source: string): BudgetSpec[] {
  return readBudgetList(new Reader(source), list);
}

export function loadBudgetConfig(path: string): BudgetConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new BudgetConfigError(path, '', `cannot read the budgets file: ${(e as Error).message}`);
  }
  return parseBudgetConfig(text, path);
}
