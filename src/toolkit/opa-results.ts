/** Reading `opa test --format json` reports. Pure. */

export type RegoTestOutcome = 'pass' | 'fail' | 'error' | 'skip';

export interface RegoTestResult {
  /** data.<package>.<name> */
  id: string;
  file: string | null;
  line: number | null;
  outcome: RegoTestOutcome;
  /** Runtime error of an "error" outcome, with its location. */
  error: string | null;
  /** What the test printed (print()), if anything. */
  output: string | null;
}

export interface RegoTestSummary {
  total: number;
  passed: number;
  failed: number;
  errors: number;
  skipped: number;
}

interface RawLocation {
  file?: unknown;
  row?: unknown;
}

interface RawResult {
  location?: RawLocation;
  package?: unknown;
  name?: unknown;
  fail?: unknown;
  skip?: unknown;
  error?: { message?: unknown; code?: unknown; location?: RawLocation };
  output?: unknown;
}

function where(loc: RawLocation | undefined): string {
  if (!loc || typeof loc.file !== 'string' || !loc.file) return '';
  return `${loc.file}${typeof loc.row === 'number' ? `:${loc.row}` : ''}: `;
}

/** Parses the JSON array opa test prints; null when the text is not such a report. */
export function parseTestResults(text: string): RegoTestResult[] | null {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return null;
  }
  if (!Array.isArray(doc)) return null;
  return (doc as RawResult[]).map((r) => {
    const pkg = typeof r.package === 'string' ? r.package : 'data';
    const name = typeof r.name === 'string' ? r.name : '?';
    const outcome: RegoTestOutcome = r.error ? 'error' : r.fail === true ? 'fail' : r.skip === true ? 'skip' : 'pass';
    const error = r.error ? `${where(r.error.location)}${typeof r.error.code === 'string' ? `${r.error.code}: ` : ''}${typeof r.error.message === 'string' ? r.error.message : JSON.stringify(r.error)}` : null;
    const output = typeof r.output === 'string' && r.output ? Buffer.from(r.output, 'base64').toString('utf8') : null;
    return {
      id: `${pkg}.${name}`,
      file: typeof r.location?.file === 'string' ? r.location.file : null,
      line: typeof r.location?.row === 'number' ? r.location.row : null,
      outcome, error, output,
    };
  }).sort((a, b) => (a.file ?? '').localeCompare(b.file ?? '') || (a.line ?? 0) - (b.line ?? 0));
}

export function summariseTests(results: readonly RegoTestResult[]): RegoTestSummary {
  const n = (o: RegoTestOutcome): number => results.filter((r) => r.outcome === o).length;
  return { total: results.length, passed: n('pass'), failed: n('fail'), errors: n('error'), skipped: n('skip') };
}
