import { revisionOf, subjectOf, type DecisionStats } from './query.js';
import { money, type SpendReport } from './spend.js';
import type { DecisionRecordDraft } from './types.js';
import type { Finding, VerifyReport } from './verify.js';

/** Text renderings for `tollgate logs`: plain tables, no colours (they end up in tickets and CI logs). */

/**
 * Characters that must not reach a terminal as they are: C0/C1 controls (ESC sequences can move
 * the cursor and erase the row above, hiding a call from the reviewer), zero-width characters and
 * bidi overrides (text that reads differently from what it is). Tool names, reasons that quote
 * them, even claims, are chosen by callers.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

/**
 * A value as one table cell: whitespace runs become one space (a value never starts a new row)
 * and unsafe characters are shown as `\uXXXX`, so what is on screen is what is in the log. Never
 * shortened: a truncated subject or reason would leave the reviewer guessing the rest.
 */
export function printable(s: string): string {
  return s.replace(/\s+/g, ' ').replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** UNSAFE minus C0: JSON.stringify escapes those in strings, and its indentation uses raw newlines. */
const UNSAFE_IN_JSON = /[\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

/**
 * JSON for a terminal or a pipe: JSON.stringify escapes C0 controls but leaves DEL, C1, zero-width
 * and bidi characters raw. They can only sit inside strings, where `\uXXXX` is the same value to
 * any JSON parser, so escaping them changes nothing for jq and keeps the terminal safe.
 */
export function safeJson(value: unknown, space?: number): string {
  return JSON.stringify(value, null, space).replace(UNSAFE_IN_JSON, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Left-aligned columns separated by two spaces; the last column is not padded. */
export function renderTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cols: string[]): string => cols.map((c, i) => (i === cols.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/** REASONS comes last: it is the long one, and unpadded there it never pushes other columns out of line. */
export const RECORD_COLUMNS = ['TIME', 'DECISION', 'SUB', 'TEAM', 'AGENT', 'GROUPS', 'SERVER', 'TOOL', 'ARGS', 'REVISION', 'REASONS'];

/** Longest GROUPS and ARGS cells: a table row stays readable; --json has everything. */
export const GROUPS_WIDTH = 24;
export const ARGS_WIDTH = 40;

/** s cut to at most w characters, the cut marked with "…". */
export function clip(s: string, w: number): string {
  return s.length <= w ? s : `${s.slice(0, Math.max(0, w - 1))}…`;
}

function groupsOf(r: DecisionRecordDraft): string {
  const g = (r.input?.identity as { groups?: unknown } | undefined)?.groups;
  return Array.isArray(g) && g.length ? g.map(String).join(',') : '-';
}

/** The call's (masked) arguments as compact JSON, cut at ARGS_WIDTH. */
function argsOf(r: DecisionRecordDraft): string {
  const mcp = r.input?.mcp as { params?: unknown; arguments?: unknown } | undefined;
  const params = mcp?.params;
  // A folded record keeps the arguments only in mcp.arguments (fold.ts); older ones have both.
  const args = typeof params === 'object' && params !== null && (params as { arguments?: unknown }).arguments !== undefined
    ? (params as { arguments?: unknown }).arguments : mcp?.arguments;
  if (args === undefined || args === null) return '-';
  let text: string;
  try {
    // Bounded before serialising whole: a record's arguments are already capped by authz.
    text = JSON.stringify(args);
  } catch {
    return '?';
  }
  return clip(text, ARGS_WIDTH);
}

function shortTime(iso: string): string {
  return iso.replace(/\.\d+Z$/, 'Z');
}

export function recordRow(r: DecisionRecordDraft): string[] {
  const reasons = r.result.reasons.length > 0 ? r.result.reasons.join('; ') : (r.result.error ?? '');
  return [
    printable(shortTime(r.timestamp)),
    r.result.allow ? 'allow' : 'deny',
    printable(r.identity.sub ?? '-'),
    printable(r.identity.team ?? '-'),
    printable(r.identity.agent ?? '-'),
    printable(clip(groupsOf(r), GROUPS_WIDTH)),
    printable(r.mcp.namespace && r.mcp.namespace !== 'default' ? `${r.mcp.namespace}/${r.mcp.server}` : r.mcp.server),
    printable(subjectOf(r)),
    printable(argsOf(r)),
    printable(revisionOf(r) ?? '-'),
    printable(reasons || '-'),
  ];
}

export function renderRecords(records: DecisionRecordDraft[]): string {
  return renderTable(RECORD_COLUMNS, records.map(recordRow));
}

export function renderStats(s: DecisionStats): string {
  const span = s.first && s.last ? ` from ${printable(shortTime(s.first))} to ${printable(shortTime(s.last))}` : '';
  let out = `${s.total} decisions${span}: ${s.allowed} allowed, ${s.denied} denied (${s.errors} of them before policy: bad token, malformed request, budget exhausted...)\n`;
  if (s.denied === 0) return out;
  out += '\nTop denied tools\n' + renderTable(['COUNT', 'SERVER', 'TOOL'], s.topDeniedTools.map((c) => [String(c.count), printable(c.key.server), printable(c.key.tool)]));
  out += '\nDenies per team\n' + renderTable(['COUNT', 'TEAM'], s.deniesPerTeam.map((c) => [String(c.count), printable(c.key)]));
  out += '\nDenies per reason\n' + renderTable(['COUNT', 'REASON'], s.deniesPerReason.map((c) => [String(c.count), printable(c.key)]));
  return out;
}

/** The spend report (`logs stats --by`) as a table with a TOTAL row. */
export function renderSpend(r: SpendReport): string {
  const cost = `COST (${r.currency})`;
  const head = [...r.by.map((d) => d.toUpperCase()), 'CALLS', 'ALLOWED', 'DENIED', 'TOKENS IN', 'TOKENS OUT', cost];
  const row = (g: string[], x: Omit<SpendReport['rows'][number], 'group'>): string[] =>
    [...g, String(x.calls), String(x.allowed), String(x.denied), String(x.tokensIn), String(x.tokensOut), money(x.cost)];
  const rows = r.rows.map((x) => row(r.by.map((d) => printable((x.group as Record<string, string>)[d] ?? '')), x));
  rows.push(row(r.by.map((_, i) => (i === 0 ? 'TOTAL' : '')), r.total));
  let out = renderTable(head, rows);
  if (r.unpriced > 0) out += `\n${r.unpriced} call(s) matched no price rule and are counted at 0 (add a rule, or a default with server: "*")\n`;
  return out;
}

function findingLine(f: Finding): string {
  const where = f.file ? `${f.file}${f.line ? ':' + f.line : ''}` : '-';
  return `  ${f.severity === 'error' ? 'ERROR  ' : 'warning'}  ${f.kind.padEnd(20)} ${printable(where)}\n           ${printable(f.message)}`;
}

export function renderVerify(target: string, r: VerifyReport, strict: boolean): string {
  const errors = r.findings.filter((f) => f.severity === 'error');
  const warnings = r.findings.filter((f) => f.severity === 'warning');
  const seqs = r.firstSeq !== null ? ` (seq ${r.firstSeq}..${r.lastSeq})` : '';
  let out = `${target}: ${r.files.length} file(s), ${r.records} records${seqs}, ${r.checkpoints} checkpoints` +
    (r.verifiedCheckpoints ? ` (${r.verifiedCheckpoints} signatures valid, signed through seq ${r.signedThrough ?? '-'})` : '') + '\n';
  const failed = errors.length > 0 || (strict && warnings.length > 0);
  if (!failed) {
    out += 'INTACT: the chain is unbroken' + (r.signedThrough ? ` and signed through seq ${r.signedThrough}` : '') + '\n';
  } else if (errors.some((f) => f.kind === 'truncated')) {
    out += `TRUNCATED: records are missing from the end of the log; ${errors.length} problem(s) in all\n`;
  } else if (errors.length > 0) {
    out += `BROKEN: ${errors.length} problem(s); the first is where the log stops being trustworthy\n`;
  } else {
    out += `NOT OK (--strict): ${warnings.length} warning(s)\n`;
  }
  for (const f of [...errors, ...warnings]) out += findingLine(f) + '\n';
  return out;
}
