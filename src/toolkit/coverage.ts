/**
 * Coverage math over OPA's coverage report (`opa test --coverage --format json`, or the
 * `coverage` member of `opa eval --coverage --format json`). Pure.
 */

export interface FileCoverage {
  file: string;
  covered: number;
  notCovered: number;
  percent: number;
  /** Uncovered lines as inclusive [from, to] ranges. */
  uncovered: Array<[number, number]>;
}

export interface CoverageSummary {
  files: FileCoverage[];
  covered: number;
  notCovered: number;
  percent: number;
}

interface RawRange {
  start?: { row?: unknown };
  end?: { row?: unknown };
}

interface RawFile {
  covered?: RawRange[];
  not_covered?: RawRange[];
}

function lines(ranges: RawRange[] | undefined): Set<number> {
  const out = new Set<number>();
  for (const r of ranges ?? []) {
    const a = r.start?.row;
    const b = r.end?.row;
    if (typeof a !== 'number') continue;
    const end = typeof b === 'number' && b >= a ? b : a;
    for (let l = a; l <= end; l++) out.add(l);
  }
  return out;
}

/** Sorted line numbers → inclusive ranges ([3,3], [7,9]). */
export function toRanges(ls: Iterable<number>): Array<[number, number]> {
  const sorted = [...new Set(ls)].sort((a, b) => a - b);
  const out: Array<[number, number]> = [];
  for (const l of sorted) {
    const last = out[out.length - 1];
    if (last && l === last[1] + 1) last[1] = l;
    else out.push([l, l]);
  }
  return out;
}

export function formatRanges(rs: Array<[number, number]>, max = 8): string {
  const parts = rs.slice(0, max).map(([a, b]) => (a === b ? String(a) : `${a}-${b}`));
  return parts.join(', ') + (rs.length > max ? `, … (${rs.length - max} more)` : '');
}

const pct = (covered: number, notCovered: number): number => (covered + notCovered === 0 ? 100 : (covered / (covered + notCovered)) * 100);

export interface SummariseOptions {
  /** Leave files out (e.g. *_test.rego, whose own lines say nothing about the policy). */
  exclude?: (file: string) => boolean;
  /** Rename files for display (e.g. relative to the policy directory → as the user named it). */
  display?: (file: string) => string;
}

/**
 * Per-file and total line coverage. A line counts as covered if any expression on it was
 * evaluated, and as not covered only if nothing on it was (OPA reports both for a line with a
 * partly evaluated expression). Returns null if `report` is not a coverage report.
 */
export function summariseCoverage(report: unknown, opts: SummariseOptions = {}): CoverageSummary | null {
  if (typeof report !== 'object' || report === null) return null;
  const files = (report as { files?: unknown }).files;
  if (typeof files !== 'object' || files === null || Array.isArray(files)) return null;
  const out: FileCoverage[] = [];
  for (const [name, raw] of Object.entries(files as Record<string, RawFile>)) {
    if (opts.exclude?.(name)) continue;
    const cov = lines(raw.covered);
    const not = [...lines(raw.not_covered)].filter((l) => !cov.has(l));
    out.push({ file: opts.display ? opts.display(name) : name, covered: cov.size, notCovered: not.length, percent: pct(cov.size, not.length), uncovered: toRanges(not) });
  }
  out.sort((a, b) => a.file.localeCompare(b.file));
  const covered = out.reduce((n, f) => n + f.covered, 0);
  const notCovered = out.reduce((n, f) => n + f.notCovered, 0);
  return { files: out, covered, notCovered, percent: pct(covered, notCovered) };
}

export const isRegoTestFile = (file: string): boolean => /_test\.rego$/.test(file);

/** Several raw coverage reports as one (a line covered in any of them is covered). */
export function mergeCoverageReports(reports: readonly unknown[]): unknown {
  const files: Record<string, { covered: RawRange[]; not_covered: RawRange[] }> = {};
  for (const r of reports) {
    const f = typeof r === 'object' && r !== null ? (r as { files?: unknown }).files : null;
    if (typeof f !== 'object' || f === null) continue;
    for (const [name, raw] of Object.entries(f as Record<string, RawFile>)) {
      const into = (files[name] ??= { covered: [], not_covered: [] });
      into.covered.push(...(raw.covered ?? []));
      into.not_covered.push(...(raw.not_covered ?? []));
    }
  }
  return { files };
}
