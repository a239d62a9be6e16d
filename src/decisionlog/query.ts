import type { DecisionRecordDraft } from './types.js';

/**
 * Filters and aggregates over decision records (`tollgate logs query|tail|stats`). Pure: the
 * caller reads records from files or NATS and feeds them through.
 */

export interface RecordFilter {
  /** Inclusive. */
  since?: Date | null;
  /** Exclusive. */
  until?: Date | null;
  sub?: string | null;
  team?: string | null;
  agent?: string | null;
  server?: string | null;
  namespace?: string | null;
  tool?: string | null;
  method?: string | null;
  decision?: 'allow' | 'deny' | null;
  /** Case-insensitive substring of any reason or of the error. */
  reason?: string | null;
  decisionId?: string | null;
  revision?: string | null;
  /** Classes of the called tool from the annotations its server declared (see toolClassOf); any of them. */
  toolClass?: readonly ToolClass[] | null;
  /** Annotations the called tool must have, each equal to the value given (JSON, else a string). */
  annotations?: ReadonlyArray<readonly [string, unknown]> | null;
}

export const TOOL_CLASSES = ['read', 'write', 'destructive', 'unknown'] as const;
export type ToolClass = (typeof TOOL_CLASSES)[number];

/** The tool annotations a record's (masked) input carries; null when none were known. */
export function annotationsOf(r: Pick<DecisionRecordDraft, 'input'>): Record<string, unknown> | null {
  const a = (r.input?.mcp as { annotations?: unknown } | undefined)?.annotations;
  return typeof a === 'object' && a !== null && !Array.isArray(a) ? a as Record<string, unknown> : null;
}

/**
 * read, write or destructive for a tools/call, from the MCP spec's hints and their defaults:
 * readOnlyHint true is read; otherwise destructiveHint (default true) decides. unknown when authz
 * had no annotations for the tool at call time (not listed yet); null for other methods.
 */
export function toolClassOf(r: Pick<DecisionRecordDraft, 'input' | 'mcp'>): ToolClass | null {
  if (r.mcp.method !== 'tools/call' || r.mcp.tool === null) return null;
  const a = annotationsOf(r);
  if (a === null) return 'unknown';
  if (a.readOnlyHint === true) return 'read';
  return a.destructiveHint === false ? 'write' : 'destructive';
}

export class TimeArgError extends Error {}

const RELATIVE = /^(\d+(?:\.\d+)?)(s|m|h|d|w)$/;
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

function utcMidnight(d: Date): Date {
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
}

/**
 * A point in time from the command line: ISO 8601 (`2025-03-01`, `2025-03-01T12:00:00Z`), a
 * duration ago (`90s`, `15m`, `24h`, `7d`, `2w`), or `now`, `today`, `yesterday` (UTC days,
 * like the timestamps in the log).
 */
export function parseTimeArg(s: string, now: Date): Date {
  const t = s.trim();
  if (t === 'now') return now;
  if (t === 'today') return utcMidnight(now);
  if (t === 'yesterday') return new Date(utcMidnight(now).getTime() - UNIT_MS.d!);
  const rel = RELATIVE.exec(t);
  if (rel) return new Date(now.getTime() - Number(rel[1]) * UNIT_MS[rel[2]!]!);
  if (/^\d{4}-\d{2}-\d{2}/.test(t)) {
    const d = new Date(/^\d{4}-\d{2}-\d{2}$/.test(t) ? `${t}T00:00:00Z` : t);
    if (!Number.isNaN(d.getTime())) return d;
  }
  throw new TimeArgError(`"${s}" is not a time: use an ISO date or time (2025-03-01, 2025-03-01T12:00:00Z), a duration ago (30m, 24h, 7d), or now, today, yesterday`);
}

/** Exact match, or a glob with `*` (e.g. `delete_*`). */
function matcher(pattern: string | null | undefined): ((v: string | null | undefined) => boolean) | null {
  if (pattern === null || pattern === undefined) return null;
  if (!pattern.includes('*')) return (v) => v === pattern;
  return (v) => typeof v === 'string' && globMatch(pattern, v);
}

/**
 * `*` glob without a regular expression: the values are tool names and claims that callers chose,
 * and `a*a*a*…` compiled to a backtracking expression is exponential on a crafted value. This
 * keeps only the last star to retry from, so it costs at most O(|pattern| × |value|).
 */
export function globMatch(pattern: string, value: string): boolean {
  let p = 0;
  let v = 0;
  let star = -1;
  let mark = 0;
  while (v < value.length) {
    if (p < pattern.length && pattern[p] !== '*' && pattern[p] === value[v]) {
      p++;
      v++;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      mark = v;
    } else if (star >= 0) {
      p = star + 1;
      v = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

export function revisionOf(r: Pick<DecisionRecordDraft, 'bundles'>): string | null {
  const b = r.bundles ?? {};
  return b.tollgate?.revision ?? Object.values(b)[0]?.revision ?? null;
}

/** The tool, or the method for calls that are not tool calls. */
export function subjectOf(r: Pick<DecisionRecordDraft, 'mcp'>): string {
  return r.mcp.tool ?? r.mcp.method ?? '-';
}

export type RecordPredicate = (r: DecisionRecordDraft) => boolean;

/** Compiles a filter once; fields that are not set do not constrain. */
export function compileFilter(f: RecordFilter): RecordPredicate {
  const tests: RecordPredicate[] = [];
  if (f.since) {
    const t = f.since.getTime();
    tests.push((r) => Date.parse(r.timestamp) >= t);
  }
  if (f.until) {
    const t = f.until.getTime();
    tests.push((r) => Date.parse(r.timestamp) < t);
  }
  const fields: Array<[string | null | undefined, (r: DecisionRecordDraft) => string | null | undefined]> = [
    [f.sub, (r) => r.identity?.sub],
    [f.team, (r) => r.identity?.team],
    [f.agent, (r) => r.identity?.agent],
    [f.server, (r) => r.mcp?.server],
    [f.namespace, (r) => r.mcp?.namespace],
    [f.tool, (r) => r.mcp?.tool],
    [f.method, (r) => r.mcp?.method],
    [f.decisionId, (r) => r.decision_id],
    [f.revision, (r) => revisionOf(r)],
  ];
  for (const [pattern, get] of fields) {
    const m = matcher(pattern);
    if (m) tests.push((r) => m(get(r)));
  }
  if (f.decision) {
    const allow = f.decision === 'allow';
    tests.push((r) => r.result.allow === allow);
  }
  if (f.toolClass?.length) {
    const want = new Set<ToolClass | null>(f.toolClass);
    tests.push((r) => want.has(toolClassOf(r)));
  }
  for (const [key, value] of f.annotations ?? []) {
    tests.push((r) => {
      const a = annotationsOf(r);
      return a !== null && Object.hasOwn(a, key) && a[key] === value;
    });
  }
  if (f.reason) {
    const needle = f.reason.toLowerCase();
    tests.push((r) => r.result.reasons.some((x) => x.toLowerCase().includes(needle)) || (r.result.error ?? '').toLowerCase().includes(needle));
  }
  return (r) => {
    for (const t of tests) if (!t(r)) return false;
    return true;
  };
}

/**
 * Accounting records carry no reasons or revision: they are selected through their decision.
 * An accounting record always comes after its decision (the response follows the Check), so
 * remembering the matching allowed decisions until their accounting arrives is enough. Bounded:
 * decisions whose response never came are forgotten oldest first.
 */
export class AccountingJoin {
  private readonly waiting = new Map<string, true>();
  constructor(private readonly max = 1_000_000) {}

  /** Notes a decision record and whether it matched the filter. */
  decision(r: DecisionRecordDraft, matched: boolean): void {
    if (!matched || !r.result.allow) return;
    this.waiting.set(r.decision_id, true);
    if (this.waiting.size > this.max) this.waiting.delete(this.waiting.keys().next().value as string);
  }

  /** Whether an accounting record belongs to a matching decision (each is taken once). */
  accounting(decisionId: string): boolean {
    return this.waiting.delete(decisionId);
  }
}

export interface Count<K> {
  key: K;
  count: number;
}

export interface DecisionStats {
  total: number;
  allowed: number;
  denied: number;
  /** Denials that never reached policy (bad token, malformed body...). */
  errors: number;
  first: string | null;
  last: string | null;
  topDeniedTools: Array<Count<{ server: string; tool: string }>>;
  deniesPerTeam: Array<Count<string>>;
  deniesPerReason: Array<Count<string>>;
}

/** Accumulates stats over a stream of records. */
export class StatsBuilder {
  private total = 0;
  private allowed = 0;
  private errors = 0;
  private first: string | null = null;
  private last: string | null = null;
  private readonly tools = new Map<string, { server: string; tool: string; count: number }>();
  private readonly teams = new Map<string, number>();
  private readonly reasons = new Map<string, number>();

  add(r: DecisionRecordDraft): void {
    this.total++;
    if (this.first === null || r.timestamp < this.first) this.first = r.timestamp;
    if (this.last === null || r.timestamp > this.last) this.last = r.timestamp;
    if (r.result.allow) {
      this.allowed++;
      return;
    }
    // Before policy: a bad token or body (error), or a budget refusal (policy never judged it).
    if (r.result.error || r.result.policy_allow === null) this.errors++;
    // Tools are what tools/call names; a denied initialize or tools/list is no tool.
    if (r.mcp.method === 'tools/call' && r.mcp.tool !== null) {
      const tool = r.mcp.tool;
      const key = `${r.mcp.server}\u0000${tool}`;
      const t = this.tools.get(key) ?? { server: r.mcp.server, tool, count: 0 };
      t.count++;
      this.tools.set(key, t);
    }
    const team = r.identity.team ?? '(no team)';
    this.teams.set(team, (this.teams.get(team) ?? 0) + 1);
    const reasons = r.result.reasons.length > 0 ? r.result.reasons : [r.result.error ?? '(no reason given)'];
    for (const reason of new Set(reasons)) this.reasons.set(reason, (this.reasons.get(reason) ?? 0) + 1);
  }

  result(top = 10): DecisionStats {
    const sorted = <T extends { count: number }>(xs: T[], label: (x: T) => string): T[] =>
      xs.sort((a, b) => b.count - a.count || (label(a) < label(b) ? -1 : 1)).slice(0, top);
    return {
      total: this.total,
      allowed: this.allowed,
      denied: this.total - this.allowed,
      errors: this.errors,
      first: this.first,
      last: this.last,
      topDeniedTools: sorted([...this.tools.values()], (x) => x.server + x.tool).map(({ server, tool, count }) => ({ key: { server, tool }, count })),
      deniesPerTeam: sorted([...this.teams].map(([key, count]) => ({ key, count })), (x) => x.key),
      deniesPerReason: sorted([...this.reasons].map(([key, count]) => ({ key, count })), (x) => x.key),
    };
  }
}
