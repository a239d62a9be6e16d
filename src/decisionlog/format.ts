import { revisionOf, subjectOf, type DecisionStats } from './query.js';
import type { DecisionRecordDraft } from './types.js';
import type { Finding, VerifyReport } from './verify.js';

/** Text renderings for `tollgate logs`: plain tables, no colours (they end up in tickets and CI logs). */

function cell(s: string, max: number): string {
  const flat = s.replace(/\s+/g, ' ');
  return flat.length > max ? flat.slice(0, max - 1) + '…' : flat;
}

/** Left-aligned columns separated by two spaces; the last column is not padded. */
export function renderTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cols: string[]): string => cols.map((c, i) => (i === cols.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

export const RECORD_COLUMNS = ['TIME', 'DECISION', 'SUB', 'TEAM', 'SERVER', 'TOOL', 'REASONS', 'REVISION'];

function shortTime(iso: string): string {
  return iso.replace(/\.\d+Z$/, 'Z');
}

export function recordRow(r: DecisionRecordDraft): string[] {
  const reasons = r.result.reasons.length > 0 ? r.result.reasons.join('; ') : (r.result.error ?? '');
  return [
    shortTime(r.timestamp),
    r.result.allow ? 'allow' : 'deny',
    cell(r.identity.sub ?? '-', 32),
    cell(r.identity.team ?? '-', 20),
    cell(r.mcp.namespace && r.mcp.namespace !== 'default' ? `${r.mcp.namespace}/${r.mcp.server}` : r.mcp.server, 32),
    cell(subjectOf(r), 32),
    cell(reasons || '-', 72),
    cell(revisionOf(r) ?? '-', 24),
  ];
}

export function renderRecords(records: DecisionRecordDraft[]): string {
  return renderTable(RECORD_COLUMNS, records.map(recordRow));
}

export function renderStats(s: DecisionStats): string {
  const span = s.first && s.last ? ` from ${shortTime(s.first)} to ${shortTime(s.last)}` : '';
  let out = `${s.total} decisions${span}: ${s.allowed} allowed, ${s.denied} denied (${s.errors} of them before policy: bad token, malformed request...)\n`;
  if (s.denied === 0) return out;
  out += '\nTop denied tools\n' + renderTable(['COUNT', 'SERVER', 'TOOL'], s.topDeniedTools.map((c) => [String(c.count), c.key.server, c.key.tool]));
  out += '\nDenies per team\n' + renderTable(['COUNT', 'TEAM'], s.deniesPerTeam.map((c) => [String(c.count), c.key]));
  out += '\nDenies per reason\n' + renderTable(['COUNT', 'REASON'], s.deniesPerReason.map((c) => [String(c.count), cell(c.key, 100)]));
  return out;
}

function findingLine(f: Finding): string {
  const where = f.file ? `${f.file}${f.line ? ':' + f.line : ''}` : '-';
  return `  ${f.severity === 'error' ? 'ERROR  ' : 'warning'}  ${f.kind.padEnd(20)} ${where}\n           ${f.message}`;
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
  } else if (errors.length > 0) {
    out += `BROKEN: ${errors.length} problem(s); the first is where the log stops being trustworthy\n`;
  } else {
    out += `NOT OK (--strict): ${warnings.length} warning(s)\n`;
  }
  for (const f of [...errors, ...warnings]) out += findingLine(f) + '\n';
  return out;
}
