import { readFileSync } from 'node:fs';
import { regionalBucket } from '../nats/budget-keys.js';
import { isRegionName } from '../nats/placement.js';
import { parseServers } from '../nats/settings.js';
import { parseYaml } from '../util/yaml-lazy.js';
import { DEFAULT_ENCODING, ENCODING_NAMES, type EncodingName } from './tokens.js';
import { assertTimeZone, WINDOW_KINDS } from './window.js';
import { z } from 'zod';
import { describeValue as describe, fieldDoc as doc, firstProblem, strictMapping } from '../config/schema.js';

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


export interface LeaseSettings {
  /** A lease is this fraction of the limit ... */
  fraction: number;
  /** ... but at least this many tokens ... */
  min: number;
  /** ... and at most this many. */
  max: number;
  /** How long a replica cut off from NATS may still spend its lease (use-leases-until-expiry). */
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

/** An optional Kubernetes namespace field, documented with `text`. */
const namespaceName = (meaning: string) => text().superRefine((v, ctx) => {
  if (!NAMESPACE_NAME.test(v)) ctx.addIssue({ code: 'custom', message: `"${v}" is not a Kubernetes namespace name (lowercase letters, digits and "-", at most 63)` });
}).optional().meta(doc('none', meaning));

export class BudgetConfigError extends Error {
  constructor(readonly file: string, readonly field: string, problem: string) {
    super(`${file}: ${field ? `${field}: ` : ''}${problem}`);
    this.name = 'BudgetConfigError';
  }
}

/** Budget names become NATS KV key tokens and file keys: keep them to a safe alphabet. */
export const BUDGET_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** A trimmed non-empty string; `missing`: what to say when it is absent. */
const text = (missing?: string) => z.string({
  error: (iss) => (iss.input === undefined && missing ? missing : `must be a non-empty string, got ${describe(iss.input)}`),
}).trim().superRefine((v, ctx) => {
  if (v === '') ctx.addIssue({ code: 'custom', message: 'must be a non-empty string, got ""' });
});

/** One of a fixed set of words, typed as that set. */
const oneOf = <T extends string>(allowed: readonly T[], missing?: string) => text(missing).superRefine((v, ctx) => {
  if (!(allowed as readonly string[]).includes(v)) ctx.addIssue({ code: 'custom', message: `must be one of ${allowed.join(', ')}, got "${v}"` });
}).transform((v) => v as T);

const wholeNumber = (min: number, missing?: string) => z.number({
  error: (iss) => (iss.input === undefined && missing ? missing : `must be a whole number ≥ ${min}, got ${describe(iss.input)}`),
}).superRefine((v, ctx) => {
  if (!Number.isSafeInteger(v) || v < min) ctx.addIssue({ code: 'custom', message: `must be a whole number ≥ ${min}, got ${v}` });
});

/** 500ms, 30s, 5m, 1h, or a number of seconds; in milliseconds. */
const duration = z.union([z.number(), z.string()], {
  error: (iss) => `must be a duration such as 500ms, 30s, 5m (or a number of seconds), got ${describe(iss.input)}`,
}).transform((v, ctx) => {
  const m = typeof v === 'string' ? /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(v.trim()) : null;
  const ms = typeof v === 'number' ? v * 1000 : m ? Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'] : NaN;
  if (typeof v === 'string' && !m) ctx.addIssue({ code: 'custom', message: `must be a duration such as 500ms, 30s, 5m (or a number of seconds), got ${describe(v)}` });
  else if (!(ms > 0)) ctx.addIssue({ code: 'custom', message: 'must be longer than 0' });
  return ms;
});

const bucketName = text().superRefine((v, ctx) => {
  if (!/^[A-Za-z0-9_-]+$/.test(v)) ctx.addIssue({ code: 'custom', message: `"${v}" may only hold letters, digits, "-" and "_" (a JetStream KV bucket name)` });
});

/** YAML turns `team: 42` into a number; a scope value is an identity string. */
const scopeValue = z.union([z.number().transform(String), text()], { error: (iss) => `must be a non-empty string, got ${describe(iss.input)}` });

const scopeSchema = strictMapping(
  Object.fromEntries(SCOPE_FIELDS.map((f) => [f, scopeValue.optional().meta(doc('—', `the caller's ${f} must equal this`))])) as Record<ScopeField, z.ZodOptional<typeof scopeValue>>,
  `must be a mapping of ${SCOPE_FIELDS.join(', ')} to values`,
);

/** One budget (docs/budgets.md, "Budget fields"). */
export const budgetSchema = strictMapping({
  name: text('is required').superRefine((v, ctx) => {
    if (!BUDGET_NAME.test(v)) ctx.addIssue({ code: 'custom', message: `"${v}" must be 1-64 letters, digits, "-" or "_", starting with a letter or digit` });
  }).meta(doc('required', 'Unique name: 1–64 letters, digits, `-`, `_`, starting with a letter or digit. Shown to clients in denials, used as the key of its state.')),
  scope: scopeSchema.nullable().optional().transform((v): BudgetScope => v ?? {})
    .meta(doc('`{}` (every call)', 'Which calls the budget applies to: a mapping of any of `team`, `agent`, `sub`, `server`, `tool` to a value. All fields given must equal the caller\'s (they AND together). `team`, `agent` and `sub` come from the verified token (see docs/policy-input.md, `input.identity`), `server` from the sidecar\'s route, `tool` from `tools/call`. An empty or missing scope applies to every call.')),
  limit: wholeNumber(1, 'is required (tokens per window)').meta(doc('required', 'Tokens per window, a whole number ≥ 1. `tollgate budget set` can override it without editing the file.')),
  window: oneOf(WINDOW_KINDS, `is required (${WINDOW_KINDS.join(', ')})`).meta(doc('required', '`hour`, `day` or `month` (see [Windows](#windows)).')),
  timezone: text().superRefine((v, ctx) => {
    try {
      assertTimeZone(v);
    } catch {
      ctx.addIssue({ code: 'custom', message: `"${v}" is not an IANA time zone (e.g. UTC, Europe/Berlin, America/New_York)` });
    }
  }).default('UTC').meta(doc('`UTC`', 'IANA time zone (`Europe/Berlin`, `America/New_York`) in which `day` and `month` windows begin at local midnight. Default `UTC`. Not used by `hour`.')),
  action: oneOf<BudgetAction>(['deny', 'warn']).default('deny').meta(doc('`deny`', '`deny` (default): refuse calls once the budget is used up. `warn`: never refuse; used-up `warn` budgets are reported in `BudgetCheck.warnings` and the decision record.')),
  tokenizer: oneOf<EncodingName>(ENCODING_NAMES).default(DEFAULT_ENCODING).meta(doc('`o200k_base`', 'Encoding to count this budget\'s tokens in: `o200k_base` (GPT-4o and later), `cl100k_base` (GPT-4, GPT-3.5), `p50k_base`, `p50k_edit`, `r50k_base`, `gpt2`, `o200k_harmony`. Each budget is charged in its own encoding.')),
  description: z.string({ error: 'must be a string' }).optional().meta(doc('—', 'Free text for people; ignored.')),
  namespace: namespaceName('The Kubernetes namespace that owns the budget (set for TokenBudget objects). Its usage keys are then `w.<namespace>.<name>.<window>`, so a NATS permission can give each namespace\'s sidecars its own keys only; unset: a mesh-wide budget, `w._.<name>.<window>`.'),
}, 'must be a mapping with name, scope, limit, window');

/** One budget as declared (file, NATS or TokenBudget): defaults filled, `description` dropped. */
export type BudgetSpec = Omit<z.output<typeof budgetSchema>, 'description'>;

const leaseSchema = strictMapping({
  fraction: z.number({ error: (iss) => `must be a number in (0, 1], got ${describe(iss.input)}` }).superRefine((v, ctx) => {
    if (!(v > 0 && v <= 1)) ctx.addIssue({ code: 'custom', message: `must be a number in (0, 1], got ${v}` });
  }).optional().meta(doc('`0.01`', 'Size of a lease as a fraction of the limit ...')),
  min: wholeNumber(1).optional().meta(doc('`1000`', '... at least this many tokens ...')),
  max: wholeNumber(1).optional().meta(doc('`50000`', '... at most this many (also the most a replica can hold back from others). Leases grow within this range to cover two sync intervals at the replica\'s observed spending rate. Never more than the limit.')),
  ttl: duration.optional().meta(doc('`30s`', 'How long a replica cut off from NATS may still spend its lease (under `onNatsUnavailable: use-leases-until-expiry`), counted from when NATS last answered it. While NATS answers, a lease does not expire.')),
}, 'must be a mapping (fraction, min, max, ttl)');

/** The `nats` section (docs/budgets.md, "`nats` fields"). */
export const budgetNatsSchema = strictMapping({
  url: text().superRefine((v, ctx) => {
    try {
      parseServers(v, 'nats.url');
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
    }
  }).optional().meta(doc('the process\'s NATS connection', 'NATS server(s) with JetStream enabled (`nats-server -js`). Optional: authz connects once (`--nats`), and a url here must then name the same servers; tools that connect on their own need it.')),
  bucket: bucketName.optional().meta(doc('`tollgate_budgets`', 'JetStream KV bucket holding usage and leases, one key per budget and window: `w.<namespace>.<budget>.<window>` for a TokenBudget, `w._.<budget>.<window>` for a mesh-wide budget (see "Usage keys and upgrades" below). Entries are kept 62 days.')),
  scope: oneOf<BudgetRegionScope>(['global', 'region']).optional().meta(doc('`global`', '`global`: every replica, in every region, shares one usage bucket. `region`: each region has its own usage bucket (`<bucket>_<region>`), placed in its NATS cluster, so the limit applies per region and a region keeps charging when cut off from the others. The trade-off (overshoot vs. availability) is in [multi-region](multi-region.md).')),
  region: text().superRefine((v, ctx) => {
    if (!isRegionName(v)) ctx.addIssue({ code: 'custom', message: `"${v}" must be 1-32 letters, digits or "-", starting with a letter or digit (a NATS cluster name)` });
  }).optional().meta(doc('none', 'With `scope: region`, required: the region this authz runs in, i.e. its NATS cluster\'s name (1–32 letters, digits or `-`). Refused without `scope: region`.')),
  configBucket: bucketName.optional().meta(doc('`tollgate_budget_config`', 'KV bucket holding limit overrides (`limits`) and the declared budgets (`specs`) for `tollgate budget`.')),
  onNatsUnavailable: oneOf<OnNatsUnavailable>(['fail-closed', 'use-leases-until-expiry']).optional().meta(doc('`fail-closed`', 'What Check does while NATS cannot be reached; see [NATS unreachable](#nats-unreachable).')),
  lease: leaseSchema.optional().meta(doc('see below', 'lease sizing')),
  syncInterval: duration.optional().meta(doc('`1s`', 'How often each replica reports what it spent (while it spends) and checks its leases. At most a third of `lease.ttl`.')),
  timeout: duration.optional().meta(doc('`2s`', 'A KV operation that takes longer counts as NATS being unreachable.')),
  definitions: z.boolean({ error: (iss) => `must be true or false, got ${describe(iss.input)}` }).optional()
    .meta(doc('`false`', 'Also apply the budget definitions the control plane publishes in `configBucket` under the key `definitions` (one per `TokenBudget` object, written by `tollgate operator`; see docs/kubernetes.md), live: a new, changed or deleted TokenBudget takes effect on the next call after the KV watch delivers it (typically well under a second). They are added to the file\'s budgets; a published budget whose name the file also uses is ignored, with a warning. A malformed or older publication is refused and the last good one stays in force. The data plane only reads this key; it never imports control-plane code.')),
  namespace: namespaceName('The Kubernetes namespace this authz serves (injected sidecars): published budgets of other namespaces are not applied, and usage keys of its namespace are `w.<namespace>.…` (see "Usage keys and upgrades"). A DNS label.'),
}, 'must be a mapping (url, bucket, lease, …)');

/**
 * The budgets file. One schema checks it and types it, and the tables in docs/budgets.md are
 * generated from it (`make config-docs`). Cross-field rules (unique names, lease min ≤ max,
 * sync interval vs. lease ttl, region with scope) are checked after it, in parseBudgetConfig.
 */
export const budgetFileSchema = strictMapping({
  budgets: z.array(budgetSchema, { error: (iss) => `must be a list of budgets, got ${describe(iss.input)}` }).nullable().optional().meta(doc('`[]`', 'the budgets (see Budget fields)')),
  nats: budgetNatsSchema.nullable().optional().meta(doc('null', 'shared state in NATS JetStream; null: in-process state under the state directory')),
}, 'must be a mapping with a "budgets" list');

export type BudgetFile = z.output<typeof budgetFileSchema>;

/** The schema's verdict on `value`, or the first problem as a BudgetConfigError naming the field. */
function check<S extends z.ZodType>(schema: S, value: unknown, source: string, at: readonly PropertyKey[] = []): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const [field, problem] = firstProblem(r.error, at);
  throw new BudgetConfigError(source, field, problem);
}

function uniqueNames(source: string, budgets: BudgetSpec[]): BudgetSpec[] {
  const seen = new Map<string, number>();
  budgets.forEach((b, i) => {
    const prev = seen.get(b.name);
    if (prev !== undefined) throw new BudgetConfigError(source, `budgets[${i}].name`, `"${b.name}" is already used by budgets[${prev}]; names must be unique`);
    seen.set(b.name, i);
  });
  return budgets.map(({ name, scope, limit, window, timezone, action, tokenizer, namespace }) => ({ name, scope, limit, window, timezone, action, tokenizer, ...(namespace !== undefined ? { namespace } : {}) }));
}

function resolveNats(file: string, n: z.output<typeof budgetNatsSchema> | null | undefined): NatsBudgetSettings | null {
  if (!n) return null;
  const fail = (field: string, problem: string): never => { throw new BudgetConfigError(file, field, problem); };
  const d = DEFAULT_NATS_SETTINGS;
  const lease = { fraction: n.lease?.fraction ?? d.lease.fraction, min: n.lease?.min ?? d.lease.min, max: n.lease?.max ?? d.lease.max, ttlMs: n.lease?.ttl ?? d.lease.ttlMs };
  if (lease.min > lease.max) fail('nats.lease', `min (${lease.min}) is larger than max (${lease.max})`);
  const syncIntervalMs = n.syncInterval ?? d.syncIntervalMs;
  if (syncIntervalMs * 3 > lease.ttlMs) fail('nats.syncInterval', `must be at most a third of nats.lease.ttl (${lease.ttlMs} ms) so a lease is renewed well before it runs out`);
  // `scope: region` needs the region this process runs in; `region` without it would be ignored, so it is refused.
  const scope = n.scope ?? 'global';
  if (scope === 'global' && n.region !== undefined) fail('nats.region', 'is only read with nats.scope: region (under global budgets every region shares one bucket)');
  if (scope === 'region' && n.region === undefined) fail('nats.region', 'is required with nats.scope: region: the NATS cluster name of the region this authz runs in');
  const region = scope === 'region' ? n.region! : null;
  const bucket = n.bucket ?? d.bucket;
  return {
    url: n.url ?? '',
    bucket: region === null ? bucket : regionalBucket(bucket, region),
    scope,
    region,
    configBucket: n.configBucket ?? d.configBucket,
    onNatsUnavailable: n.onNatsUnavailable ?? d.onNatsUnavailable,
    lease,
    syncIntervalMs,
    timeoutMs: n.timeout ?? d.timeoutMs,
    definitions: n.definitions === true,
    namespace: n.namespace ?? null,
  };
}

export function parseBudgetConfig(text: string, file = '<budgets>'): BudgetConfig {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new BudgetConfigError(file, '', `not valid YAML: ${(e as Error).message}`);
  }
  if (doc === null || doc === undefined) return { file, budgets: [], nats: null };
  const parsed = check(budgetFileSchema, doc, file);
  return { file, budgets: uniqueNames(file, parsed.budgets ?? []), nats: resolveNats(file, parsed.nats) };
}

/**
 * Budget declarations in the file's shape (a list of {name, scope, limit, window, ...}) from any
 * source, checked field by field; `source` names it in errors (e.g. the NATS key they came from).
 */
export function parseBudgetList(list: unknown, source: string): BudgetSpec[] {
  return uniqueNames(source, check(z.array(budgetSchema, { error: (iss) => `must be a list of budgets, got ${describe(iss.input)}` }), list, source, ['budgets']));
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

/**
 * The budgets file of an authz that serves one Kubernetes namespace (an injected sidecar, told by
 * `--budget-namespace`, which the injector sets from the namespace the API server admitted the pod
 * into). Its NATS credential may write only that namespace's (and mesh-wide) usage keys, so
 * `nats.namespace` becomes that namespace; a file naming another one is refused rather than left
 * to fail every sync. Local budgets (no `nats` section) have no usage keys and are returned as they are.
 */
export function withServedNamespace(config: BudgetConfig, namespace: string, origin: string): BudgetConfig {
  if (!NAMESPACE_NAME.test(namespace)) throw new BudgetConfigError(config.file, 'nats.namespace', `${origin}: "${namespace}" is not a Kubernetes namespace name (lowercase letters, digits and "-", at most 63)`);
  if (config.nats === null) return config;
  const named = config.nats.namespace;
  if (named !== null && named !== namespace) {
    throw new BudgetConfigError(config.file, 'nats.namespace', `is "${named}", but this authz serves namespace "${namespace}" (${origin}): its NATS credential may write only that namespace's usage keys; remove nats.namespace or set it to "${namespace}"`);
  }
  return { ...config, nats: { ...config.nats, namespace } };
}
