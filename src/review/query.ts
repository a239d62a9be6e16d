import { globMatch, parseTimeArg, TimeArgError } from '../decisionlog/query.js';
import { FIELDS, FLAG_ALLOW, FLAG_ERROR, NO_TOKENS, type Field, type LogIndex } from './log-index.js';

/**
 * Queries over the review index: the filtered timeline a page at a time (newest first, by
 * cursor), the summary behind the charts, and the budget burn-down of a team. Pure over the
 * index: no I/O. Filters are compiled against the dictionaries first (one test per distinct
 * value), so a scan costs a few array reads per record however complex the pattern.
 */

export class FilterError extends Error {}

export interface ReviewFilter {
  /** Exact value or `*` glob, per field (reason: case-insensitive substring). */
  fields: Partial<Record<Field, string>>;
  decision: 'allow' | 'deny' | 'error' | null;
  since: Date | null;
  until: Date | null;
}

/** Longest filter value accepted: values are matched against every distinct value of a field. */
const MAX_VALUE = 256;
export const MAX_PAGE = 200;
const PARAMS = new Set<string>([...FIELDS, 'decision', 'since', 'until', 'cursor', 'limit', 'team_chart']);

/** A value matched against the index's dictionaries, refused when longer than MAX_VALUE. */
function boundedValue(k: string, v: string): string {
  if (v.length > MAX_VALUE) throw new FilterError(`${k}: longer than ${MAX_VALUE} characters`);
  return v;
}

/** The team a burn-down chart draws (`team_chart`), bounded like every filter value. */
export function chartTeamFromParams(q: URLSearchParams): string {
  const team = q.get('team_chart');
  if (!team) throw new FilterError('team_chart: which team to draw');
  return boundedValue('team_chart', team);
}

/** The filter of a query string. Unknown parameters are refused, not ignored (a typo would silently widen the view). */
export function filterFromParams(q: URLSearchParams, now: Date): ReviewFilter {
  const f: ReviewFilter = { fields: {}, decision: null, since: null, until: null };
  for (const k of new Set(q.keys())) {
    if (!PARAMS.has(k)) throw new FilterError(`unknown parameter "${k}" (filters: ${[...FIELDS, 'decision', 'since', 'until'].join(', ')})`);
    if (q.getAll(k).length > 1) throw new FilterError(`parameter "${k}" given more than once`);
  }
  for (const k of FIELDS) {
    const v = q.get(k);
    if (v === null || v === '') continue;
    f.fields[k] = boundedValue(k, v);
  }
  const d = q.get('decision');
  if (d !== null && d !== '') {
    if (d !== 'allow' && d !== 'deny' && d !== 'error') throw new FilterError('decision must be allow, deny or error');
    f.decision = d;
  }
  const time = (k: 'since' | 'until'): Date | null => {
    const v = q.get(k);
    if (v === null || v === '') return null;
    if (v.length > 64) throw new FilterError(`${k}: not a time`);
    try {
      return parseTimeArg(v, now);
    } catch (e) {
      if (e instanceof TimeArgError) throw new FilterError(`${k}: ${e.message}`);
      throw e;
    }
  };
  f.since = time('since');
  f.until = time('until');
  return f;
}

/** A compiled filter: per field, a flag per dictionary id; null where the field is free. */
export interface Compiled {
  sel: Array<[Uint32Array, Uint8Array]>;
  since: number;
  until: number;
  decision: ReviewFilter['decision'];
}

export function compile(index: LogIndex, f: ReviewFilter): Compiled {
  const sel: Compiled['sel'] = [];
  for (const k of FIELDS) {
    const pattern = f.fields[k];
    if (pattern === undefined) continue;
    let test: (v: string) => boolean;
    if (k === 'reason') {
      const needle = pattern.toLowerCase();
      test = (v) => v.toLowerCase().includes(needle);
    } else if (pattern.includes('*')) {
      test = (v) => globMatch(pattern, v);
    } else {
      test = (v) => v === pattern;
    }
    sel.push([index.cols[k].data, index.dicts[k].select(test)]);
  }
  return { sel, since: f.since?.getTime() ?? -Infinity, until: f.until?.getTime() ?? Infinity, decision: f.decision };
}

/** Whether a row passes (the arrays are read straight: this is the inner loop of every scan). */
export function matches(index: LogIndex, c: Compiled, row: number): boolean {
  const t = index.time.data[row]!;
  if (t < c.since || t >= c.until) return false;
  if (c.decision !== null) {
    const fl = index.flags.data[row]!;
    if (c.decision === 'allow' ? (fl & FLAG_ALLOW) === 0 : c.decision === 'deny' ? (fl & FLAG_ALLOW) !== 0 : (fl & FLAG_ERROR) === 0) return false;
  }
  for (const [col, ok] of c.sel) if (ok[col[row]!] !== 1) return false;
  return true;
}

export interface TimelineRow {
  row: number;
  time: string;
  decision: 'allow' | 'deny';
  /** Refused before policy. */
  error: boolean;
  sub: string | null;
  team: string | null;
  agent: string | null;
  server: string | null;
  namespace: string | null;
  tool: string | null;
  method: string | null;
  revision: string | null;
  reasons: string | null;
  tokens: { in: number | null; out: number | null };
}

export interface TimelinePage {
  rows: TimelineRow[];
  /** Pass as `cursor` for the next (older) page; null at the start of the log. */
  next: string | null;
  /** Records the index held when the page was cut. */
  indexed: number;
}

export function rowSummary(index: LogIndex, row: number): TimelineRow {
  const v = (k: Field): string | null => index.dicts[k].value(index.cols[k].data[row]!);
  const fl = index.flags.data[row]!;
  return {
    row, time: new Date(index.time.data[row]!).toISOString(), decision: fl & FLAG_ALLOW ? 'allow' : 'deny', error: (fl & FLAG_ERROR) !== 0,
    sub: v('sub'), team: v('team'), agent: v('agent'), server: v('server'), namespace: v('namespace'), tool: v('tool'), method: v('method'),
    revision: v('revision'), reasons: v('reason'), tokens: index.tokens(row),
  };
}

/** Parses a cursor: a row number from an earlier page; anything else is refused. */
export function parseCursor(s: string | null, size: number): number {
  if (s === null || s === '') return size;
  if (!/^\d{1,10}$/.test(s)) throw new FilterError('cursor must be a value returned as "next" by an earlier page');
  return Math.min(Number(s), size);
}

export function parseLimit(s: string | null, dflt = 50): number {
  if (s === null || s === '') return dflt;
  if (!/^\d{1,4}$/.test(s) || Number(s) < 1 || Number(s) > MAX_PAGE) throw new FilterError(`limit must be 1..${MAX_PAGE}`);
  return Number(s);
}

/** Up to `limit` matching rows older than `cursor`, newest first. */
export function timeline(index: LogIndex, f: ReviewFilter, cursor: number, limit: number): TimelinePage {
  const c = compile(index, f);
  const rows: TimelineRow[] = [];
  let row = Math.min(cursor, index.size) - 1;
  for (; row >= 0 && rows.length < limit; row--) if (matches(index, c, row)) rows.push(rowSummary(index, row));
  return { rows, next: rows.length === limit && row >= 0 ? String(row + 1) : null, indexed: index.size };
}

export interface Ranked {
  key: string;
  count: number;
}

export interface Summary {
  matched: number;
  allowed: number;
  denied: number;
  errors: number;
  first: string | null;
  last: string | null;
  tokensIn: number;
  tokensOut: number;
  topDeniedTools: Array<Ranked & { server: string; tool: string }>;
  topDeniedTeams: Ranked[];
  /** Teams with the most matching calls (whose burn-down the page draws). */
  busiestTeams: Ranked[];
}

function top(m: Map<number, number>, n: number, label: (k: number) => string): Ranked[] {
  return [...m].map(([k, count]) => ({ key: label(k), count })).sort((a, b) => b.count - a.count || (a.key < b.key ? -1 : 1)).slice(0, n);
}

/** Counts over every matching record: the numbers and the rankings the charts draw. */
export function summary(index: LogIndex, f: ReviewFilter, n = 10): Summary {
  const c = compile(index, f);
  const team = index.cols.team.data;
  const server = index.cols.server.data;
  const tool = index.cols.tool.data;
  const method = index.cols.method.data;
  const flags = index.flags.data;
  const time = index.time.data;
  const tin = index.tokensIn.data;
  const tout = index.tokensOut.data;
  // Counts per team id in typed arrays: this loop runs once per record, so no Map and no allocation in it.
  const teams = new Float64Array(index.dicts.team.size);
  const deniedTeams = new Float64Array(index.dicts.team.size);
  const deniedTools = new Map<number, number>();
  let matched = 0, allowed = 0, errors = 0, tokensIn = 0, tokensOut = 0;
  let first = Infinity, last = -Infinity;
  for (let row = 0; row < index.size; row++) {
    if (!matches(index, c, row)) continue;
    matched++;
    const t = time[row]!;
    if (t < first) first = t;
    if (t > last) last = t;
    if (tin[row]! !== NO_TOKENS) tokensIn += tin[row]!;
    if (tout[row]! !== NO_TOKENS) tokensOut += tout[row]!;
    teams[team[row]!]!++;
    const fl = flags[row]!;
    if (fl & FLAG_ALLOW) {
      allowed++;
      continue;
    }
    if (fl & FLAG_ERROR) errors++;
    // Tool, or the method for calls that are not tool calls (odd key: a method id).
    const subject = tool[row]! !== 0 ? tool[row]! * 2 : method[row]! * 2 + 1;
    const key = server[row]! * 2 ** 32 + subject;
    deniedTools.set(key, (deniedTools.get(key) ?? 0) + 1);
    deniedTeams[team[row]!]!++;
  }
  const teamName = (id: number): string => index.dicts.team.value(id) ?? '(no team)';
  const ranked = (counts: Float64Array): Map<number, number> => {
    const m = new Map<number, number>();
    counts.forEach((count, id) => { if (count > 0) m.set(id, count); });
    return m;
  };
  const toolRank = [...deniedTools].sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, n).map(([key, count]) => {
    const s = index.dicts.server.value(Math.floor(key / 2 ** 32)) ?? '-';
    const sub = key % 2 ** 32;
    const name = (sub % 2 === 0 ? index.dicts.tool.value(sub / 2) : index.dicts.method.value((sub - 1) / 2)) ?? '-';
    return { key: `${s} / ${name}`, server: s, tool: name, count };
  });
  return {
    matched, allowed, denied: matched - allowed, errors,
    first: matched ? new Date(first).toISOString() : null, last: matched ? new Date(last).toISOString() : null,
    tokensIn, tokensOut, topDeniedTools: toolRank, topDeniedTeams: top(ranked(deniedTeams), n, teamName), busiestTeams: top(ranked(teams), n, teamName),
  };
}

export interface BurnSeries {
  name: string;
  /** Latest limit seen; null for a token series. */
  limit: number | null;
  /** [bucket end (ms), value], only for buckets with data. */
  points: Array<[number, number]>;
}

export interface BurnDown {
  team: string;
  /** `budget`: tokens remaining per budget; `tokens`: cumulative tokens used (no budget in the records). */
  kind: 'budget' | 'tokens';
  from: number;
  to: number;
  series: BurnSeries[];
}

const BUCKETS = 48;
const MAX_SERIES = 4;

/**
 * A team's budgets over time: the remaining tokens each record saw, the last per time bucket.
 * Records that carry no budget standing give the cumulative tokens (in + out) instead, so a team
 * without a budget still shows its burn. The other filters narrow which records count.
 */
export function burnDown(index: LogIndex, f: ReviewFilter, team: string): BurnDown {
  const c = compile(index, { ...f, fields: { ...f.fields, team } });
  let from = Infinity, to = -Infinity;
  for (let row = 0; row < index.size; row++) {
    if (!matches(index, c, row)) continue;
    const t = index.time.data[row]!;
    if (t < from) from = t;
    if (t > to) to = t;
  }
  if (from === Infinity) return { team, kind: 'tokens', from: 0, to: 0, series: [] };
  const width = Math.max(1, (to - from) / BUCKETS);
  const bucket = (t: number): number => Math.min(BUCKETS - 1, Math.floor((t - from) / width));
  const end = (b: number): number => from + (b + 1) * width;
  const b = index.budgets;
  const byName = new Map<number, { limit: number; last: Float64Array; has: Uint8Array; n: number }>();
  for (let i = 0; i < b.size; i++) {
    const row = b.row.data[i]!;
    if (!matches(index, c, row)) continue;
    const name = b.name.data[i]!;
    let s = byName.get(name);
    if (!s) byName.set(name, (s = { limit: 0, last: new Float64Array(BUCKETS), has: new Uint8Array(BUCKETS), n: 0 }));
    const k = bucket(index.time.data[row]!);
    s.last[k] = b.remaining.data[i]!;
    s.has[k] = 1;
    s.limit = b.limit.data[i]!;
    s.n++;
  }
  if (byName.size > 0) {
    const series = [...byName].sort((x, y) => y[1].n - x[1].n).slice(0, MAX_SERIES).map(([name, s]): BurnSeries => {
      const points: Array<[number, number]> = [];
      for (let k = 0; k < BUCKETS; k++) if (s.has[k]) points.push([end(k), s.last[k]!]);
      return { name: index.budgetNames.value(name) ?? '-', limit: s.limit, points };
    });
    return { team, kind: 'budget', from, to, series };
  }
  const used = new Float64Array(BUCKETS);
  for (let row = 0; row < index.size; row++) {
    if (!matches(index, c, row)) continue;
    const a = index.tokensIn.data[row]!, z = index.tokensOut.data[row]!;
    const k = bucket(index.time.data[row]!);
    used[k] = used[k]! + (a === NO_TOKENS ? 0 : a) + (z === NO_TOKENS ? 0 : z);
  }
  const points: Array<[number, number]> = [];
  let sum = 0;
  for (let k = 0; k < BUCKETS; k++) points.push([end(k), (sum += used[k]!)]);
  return { team, kind: 'tokens', from, to, series: [{ name: 'tokens used', limit: null, points }] };
}
