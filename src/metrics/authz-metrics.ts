import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { BudgetMetrics } from '../budget/gate.js';
import type { DecisionLogStats } from '../decisionlog/tee.js';
import type { AuthFailure } from '../identity/types.js';
import { BoundedLabels } from './bounded.js';
import { BudgetStandings, registerBudgetMetrics, type BudgetStandingEntry } from './budget-metrics.js';
import { registerDecisionLogMetrics } from './decision-log-metrics.js';
import { FastHistogram } from './fast-histogram.js';
import { registerPolicyMetrics, type PolicyState } from './policy-metrics.js';
import { REASON_CLASSES, type ReasonClass } from '../contract/refusal.js';
import { scrapedCounter, type Sample } from './scrape.js';
import { registerCallMetrics, type CallMetricsLimits, type OperationSample } from './mcp-metrics.js';
import { registerExtProcMetrics, type ExtProcStats } from './extproc-metrics.js';

export const METRIC_PREFIX = 'tollgate_';

/** Upper bounds in seconds: authz aims well under 1 ms, so resolution sits between 50 µs and 100 ms. */
export const CHECK_BUCKETS: readonly number[] = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1];
/** Policy evaluation alone is usually tens of microseconds, so this starts lower. */
export const EVAL_BUCKETS: readonly number[] = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1];

/** One decision, as the Check path hands it over (one per decision record). */
export interface DecisionSample {
  allow: boolean;
  /** Ignored for allows, which count as "policy". */
  reasonClass: ReasonClass;
  /** MCP server the call was for (the sidecar route's name, else the configured default). */
  server: string;
  /** From receiving the Check to this decision. */
  durationNs: number;
  /** Policy evaluation time; 0 when policy was not consulted (bad token, budget refusal, ...). */
  evalNs: number;
  /** JSON-RPC method, tool (tools/call), caller team and refusal code, for the per-call metrics. */
  method?: string | null;
  tool?: string | null;
  team?: string | null;
  code?: number | null;
}

/** Where scrape-time metrics read from; each may be set later (or never) with readFrom(). */
export interface MetricSources {
  policy: () => PolicyState | null;
  decisionLog: () => DecisionLogStats | null;
  budgets: () => BudgetMetrics | null;
  extProc: () => ExtProcStats | null;
}

export interface AuthzMetricsOptions {
  /** Server names from config: their decision series exist (at 0) before the first call. */
  servers?: readonly string[];
  /** Distinct server label values before the rest count as "other". Default 100. */
  maxServers?: number;
  /** Distinct budget label values before the rest are summed as "other". Default 100. */
  maxBudgets?: number;
  /** Caps of the per-call metrics' label values (tools, teams, servers, combinations). */
  callLimits?: CallMetricsLimits;
  /** Node.js process metrics (CPU, memory, event loop lag, GC). Default true. */
  processMetrics?: boolean;
  /** Exposed as tollgate_build_info{version}. */
  version?: string;
  clock?: () => number;
}

export interface AuthzMetrics {
  readonly registry: Registry;
  /** Hot path: counts a decision and its timings. No allocation, no string building. */
  recordDecision(d: DecisionSample): void;
  /** An allowed call whose response ext_proc saw to its end: mcp_server_operation_duration_seconds. */
  recordOperation(s: OperationSample): void;
  /** A refused bearer token, by its stable failure name (AuthError.failure). */
  recordAuthFailure(failure: AuthFailure | string): void;
  /** The budget entries a Check computed (input.budget.budgets), for the remaining-tokens gauge. */
  recordBudgetStanding(entries: readonly BudgetStandingEntry[]): void;
  /** Remaining tokens per budget as the gauge shows them (for /status). */
  budgetRemaining(): ReadonlyMap<string, number>;
  /** Points scrape-time metrics at the running parts; omitted keys keep their current reader. */
  readFrom(sources: Partial<MetricSources>): void;
  /** The text exposition and its content type, as /metrics serves it. */
  expose(): Promise<{ contentType: string; body: string }>;
}

const KNOWN_AUTH_FAILURES: readonly AuthFailure[] = [
  'missing_token', 'malformed_token', 'expired', 'not_yet_valid', 'bad_signature', 'unknown_key',
  'wrong_issuer', 'wrong_audience', 'algorithm_not_allowed', 'issuer_unavailable', 'invalid_claims',
];

/** Slot 0 counts allows; slots 1.. count denials by reason class, in REASON_CLASSES order (serverCells relies on it). */
const DENY_SLOT: Readonly<Record<ReasonClass, number>> = {
  policy: 1, budget: 2, auth: 3, bad_request: 4, unavailable: 5,
};

interface ServerCells {
  counts: Float64Array;
  /** Label sets, built once per server, in slot order. */
  labels: ReadonlyArray<Record<string, string>>;
}

function serverCells(server: string): ServerCells {
  const labels = [
    { decision: 'allow', reason_class: 'policy', server },
    ...REASON_CLASSES.map((rc) => ({ decision: 'deny', reason_class: rc, server })),
  ];
  return { counts: new Float64Array(labels.length), labels };
}

interface CountCell { labels: { failure: string }; n: number }

/**
 * The authz instruments on one registry. Check-path counts live in plain typed arrays and are
 * copied into prom-client when Prometheus scrapes; everything else is read from its owner then.
 */
export function createAuthzMetrics(registry: Registry = new Registry(), opts: AuthzMetricsOptions = {}): AuthzMetrics {
  const p = METRIC_PREFIX;
  const clock = opts.clock ?? Date.now;
  const sources: MetricSources = { policy: () => null, decisionLog: () => null, budgets: () => null, extProc: () => null };

  if (opts.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  if (opts.version) {
    new Gauge({ name: `${p}build_info`, help: 'Tollgate version running (value 1).', labelNames: ['version'], registers: [registry] })
      .set({ version: opts.version }, 1);
  }

  const servers = new BoundedLabels<ServerCells>(opts.maxServers ?? 100, serverCells);
  for (const s of opts.servers ?? []) servers.get(s);
  scrapedCounter({
    registry, name: `${p}decisions_total`, labelNames: ['decision', 'reason_class', 'server'],
    help: 'Decisions by outcome, why, and MCP server (one per decision record: each element of a JSON-RPC batch counts).',
    read: () => {
      const out: Sample[] = [];
      for (const c of servers.values()) c.labels.forEach((labels, i) => out.push({ labels, value: c.counts[i]! }));
      return out;
    },
  });

  const checkDuration = new FastHistogram({
    registry, name: `${p}check_duration_seconds`, buckets: CHECK_BUCKETS,
    help: 'Time from receiving an ext_authz Check to its decision, per decision record.',
  });
  const evalDuration = new FastHistogram({
    registry, name: `${p}policy_eval_duration_seconds`, buckets: EVAL_BUCKETS,
    help: 'Time spent evaluating the Rego (WASM) policy, per evaluation.',
  });

  const failures = new BoundedLabels<CountCell>(32, (failure) => ({ labels: { failure }, n: 0 }));
  for (const f of KNOWN_AUTH_FAILURES) failures.get(f);
  scrapedCounter({
    registry, name: `${p}auth_failures_total`, labelNames: ['failure'],
    help: 'Bearer tokens refused, by failure (missing_token, expired, bad_signature, wrong_audience, issuer_unavailable, ...).',
    read: () => [...failures.values()].map((c) => ({ labels: c.labels, value: c.n })),
  });

  const calls = registerCallMetrics(registry, p, { maxServers: opts.maxServers, ...opts.callLimits });
  registerPolicyMetrics(registry, p, () => sources.policy());
  registerDecisionLogMetrics(registry, p, () => sources.decisionLog());
  registerExtProcMetrics(registry, p, () => sources.extProc());
  const standings = new BudgetStandings(opts.maxBudgets ?? 100, () => sources.budgets());
  registerBudgetMetrics(registry, p, { max: opts.maxBudgets ?? 100, read: () => sources.budgets(), standings, clock });

  return {
    registry,
    recordDecision(d) {
      servers.get(d.server).counts[d.allow ? 0 : DENY_SLOT[d.reasonClass]]!++;
      checkDuration.record(d.durationNs / 1e9);
      if (d.evalNs > 0) evalDuration.record(d.evalNs / 1e9);
      const method = d.method ?? null;
      const tool = d.tool ?? null;
      calls.recordCall({ server: d.server, method, tool, team: d.team ?? null, allow: d.allow, code: d.code ?? null });
      // A refusal is the whole operation: authz answered it. An allow ends when the response does (recordOperation).
      if (!d.allow) calls.recordOperation({ method, tool, errorType: d.code ?? null, seconds: d.durationNs / 1e9 });
    },
    recordOperation(s) {
      calls.recordOperation(s);
    },
    recordAuthFailure(failure) {
      failures.get(failure).n++;
    },
    recordBudgetStanding(entries) {
      standings.record(entries);
    },
    budgetRemaining() {
      return standings.remainingByName(clock());
    },
    readFrom(next) {
      if (next.policy) sources.policy = next.policy;
      if (next.decisionLog) sources.decisionLog = next.decisionLog;
      if (next.budgets) sources.budgets = next.budgets;
      if (next.extProc) sources.extProc = next.extProc;
    },
    async expose() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}
