import { Histogram, type Registry } from 'prom-client';
import { BoundedLabels, OVERFLOW_LABEL } from './bounded.js';
import { scrapedCounter, type Sample } from './scrape.js';

/**
 * Per-call metrics by server, method, tool, team and decision, and the MCP semantic conventions'
 * `mcp.server.operation.duration` histogram (Prometheus name `mcp_server_operation_duration_seconds`,
 * attribute dots as underscores, the unit as a `_seconds` suffix, as OpenTelemetry's Prometheus
 * mapping does).
 *
 * Tool names and methods come from callers: every label value is cut to a bounded length, each
 * label has a cap on distinct values, and the label combinations have a cap of their own; past a
 * cap a value (or the whole combination) is counted as "other". Series never grow without bound.
 */

/** Methods the MCP conventions list as well-known; anything else is counted as "other". */
export const KNOWN_METHODS: ReadonlySet<string> = new Set([
  'completion/complete', 'elicitation/create', 'initialize', 'logging/setLevel', 'notifications/cancelled',
  'notifications/initialized', 'notifications/message', 'notifications/progress', 'notifications/prompts/list_changed',
  'notifications/resources/list_changed', 'notifications/resources/updated', 'notifications/roots/list_changed',
  'notifications/tools/list_changed', 'ping', 'prompts/get', 'prompts/list', 'resources/list', 'resources/read',
  'resources/subscribe', 'resources/templates/list', 'resources/unsubscribe', 'roots/list', 'sampling/createMessage',
  'tools/call', 'tools/list',
]);

/** Buckets: the conventions' advice (10 ms to 300 s), below it sub-millisecond ones for refusals authz answers itself. */
export const OPERATION_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300];

export const MAX_LABEL_CHARS = 128;

export interface CallMetricsLimits {
  /** Distinct tool names with their own series (default 200). */
  maxTools?: number;
  /** Distinct teams (default 100). */
  maxTeams?: number;
  /** Distinct servers (default 100). */
  maxServers?: number;
  /** Label combinations of the call counter, and of the histogram (default 5000 each). */
  maxSeries?: number;
}

/** One decision as the call metrics see it. */
export interface CallSample {
  server: string;
  method: string | null;
  tool: string | null;
  team: string | null;
  allow: boolean;
  /** JSON-RPC error code of a refusal, null for an allow. */
  code: number | null;
}

/** One finished MCP operation (a refusal at Check, or a response ext_proc saw to its end). */
export interface OperationSample {
  method: string | null;
  tool: string | null;
  /** JSON-RPC error code, or null when the operation succeeded. */
  errorType: number | null;
  seconds: number;
}

function cut(v: string): string {
  return v.length <= MAX_LABEL_CHARS ? v : v.slice(0, MAX_LABEL_CHARS);
}

/** Caps each label's distinct values. */
class LabelCaps {
  private readonly servers: BoundedLabels<string>;
  private readonly tools: BoundedLabels<string>;
  private readonly teams: BoundedLabels<string>;

  constructor(l: CallMetricsLimits) {
    this.servers = new BoundedLabels(l.maxServers ?? 100, (v) => v);
    this.tools = new BoundedLabels(l.maxTools ?? 200, (v) => v);
    this.teams = new BoundedLabels(l.maxTeams ?? 100, (v) => v);
  }

  method(m: string | null): string {
    if (m === null) return 'none';
    return KNOWN_METHODS.has(m) ? m : OVERFLOW_LABEL;
  }

  /** Only a tools/call names a tool; other methods get "" (the label is then absent in PromQL). */
  tool(method: string | null, t: string | null): string {
    return method === 'tools/call' && t !== null ? this.tools.get(cut(t)) : '';
  }

  team(t: string | null): string {
    return t ? this.teams.get(cut(t)) : '';
  }

  server(s: string): string {
    return this.servers.get(cut(s));
  }
}

/** Cells by label combination, at most `max`, then one overflow cell whose labels are all "other". */
class SeriesCap<T> {
  private readonly cells = new Map<string, T>();
  private overflow: T | null = null;
  constructor(private readonly max: number, private readonly create: (labels: Record<string, string>) => T, private readonly overflowLabels: Record<string, string>) {}

  get(key: string, labels: () => Record<string, string>): T {
    const hit = this.cells.get(key);
    if (hit !== undefined) return hit;
    if (this.cells.size < this.max) {
      const made = this.create(labels());
      this.cells.set(key, made);
      return made;
    }
    this.overflow ??= this.create(this.overflowLabels);
    return this.overflow;
  }

  *values(): IterableIterator<T> {
    yield* this.cells.values();
    if (this.overflow !== null) yield this.overflow;
  }
}

interface CallCell { labels: Record<string, string>; n: number }

interface HistCell { labels: Record<string, string>; counts: Float64Array; sum: number; count: number }

/** A labelled histogram whose observations are typed-array increments; prom-client reads it at scrape time. */
class OperationHistogram extends Histogram<string> {
  private readonly bounds: Float64Array;
  constructor(registry: Registry, private readonly cells: SeriesCap<HistCell>, private readonly metric: string, private readonly helpText: string, buckets: readonly number[]) {
    super({ name: metric, help: helpText, buckets: [...buckets], labelNames: ['mcp_method_name', 'gen_ai_tool_name', 'error_type'], registers: [registry] });
    this.bounds = Float64Array.from(buckets);
  }

  /** Called by prom-client's registry at scrape time (the same hook FastHistogram uses). */
  async getForPromString(): Promise<{ name: string; help: string; type: 'histogram'; values: Array<{ labels: Record<string, string | number>; sharedLabels: Record<string, string>; value: number; metricName: string }>; aggregator: 'sum' }> {
    const values: Array<{ labels: Record<string, string | number>; sharedLabels: Record<string, string>; value: number; metricName: string }> = [];
    for (const c of this.cells.values()) {
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += c.counts[i]!;
        values.push({ labels: { ...c.labels, le: this.bounds[i]! }, sharedLabels: {}, value: cumulative, metricName: `${this.metric}_bucket` });
      }
      values.push(
        { labels: { ...c.labels, le: '+Inf' }, sharedLabels: {}, value: c.count, metricName: `${this.metric}_bucket` },
        { labels: c.labels, sharedLabels: {}, value: c.sum, metricName: `${this.metric}_sum` },
        { labels: c.labels, sharedLabels: {}, value: c.count, metricName: `${this.metric}_count` },
      );
    }
    return { name: this.metric, help: this.helpText, type: 'histogram', values, aggregator: 'sum' };
  }
}

export interface CallMetrics {
  recordCall(s: CallSample): void;
  recordOperation(s: OperationSample): void;
}

export function registerCallMetrics(registry: Registry, prefix: string, limits: CallMetricsLimits = {}): CallMetrics {
  const caps = new LabelCaps(limits);
  const maxSeries = limits.maxSeries ?? 5000;
  const other = OVERFLOW_LABEL;
  const calls = new SeriesCap<CallCell>(maxSeries, (labels) => ({ labels, n: 0 }), { server: other, method: other, tool: other, team: other, decision: other });
  scrapedCounter({
    registry, name: `${prefix}mcp_calls_total`, labelNames: ['server', 'method', 'tool', 'team', 'decision'],
    help: 'MCP messages judged, by server, method, tool (tools/call only), caller team and decision; values past each cap count as "other".',
    read: () => [...calls.values()].map((c): Sample => ({ labels: c.labels, value: c.n })),
  });
  const bucketCount = OPERATION_BUCKETS.length + 1;
  const ops = new SeriesCap<HistCell>(maxSeries, (labels) => ({ labels, counts: new Float64Array(bucketCount), sum: 0, count: 0 }), { mcp_method_name: other, gen_ai_tool_name: other, error_type: other });
  const hist = new OperationHistogram(registry, ops, 'mcp_server_operation_duration_seconds',
    'MCP request or notification duration as the governed server\'s sidecar observes it (OpenTelemetry mcp.server.operation.duration): a refusal from the Check to the decision; an allowed call from the Check until ext_proc saw the whole response.',
    OPERATION_BUCKETS);
  const bounds = Float64Array.from(OPERATION_BUCKETS);
  void hist;

  return {
    recordCall(s) {
      const server = caps.server(s.server);
      const method = caps.method(s.method);
      const tool = caps.tool(s.method, s.tool);
      const team = caps.team(s.team);
      const decision = s.allow ? 'allow' : 'deny';
      calls.get(`${server}\u0000${method}\u0000${tool}\u0000${team}\u0000${decision}`, () => ({ server, method, tool, team, decision })).n++;
    },
    recordOperation(s) {
      const method = caps.method(s.method);
      const tool = caps.tool(s.method, s.tool);
      const errorType = s.errorType === null ? '' : String(s.errorType);
      const cell = ops.get(`${method}\u0000${tool}\u0000${errorType}`, () => ({ mcp_method_name: method, gen_ai_tool_name: tool, error_type: errorType }));
      let i = 0;
      while (i < bounds.length && s.seconds > bounds[i]!) i++;
      cell.counts[i]!++;
      cell.sum += s.seconds;
      cell.count++;
    },
  };
}
