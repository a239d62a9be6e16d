import { runOpa } from '../policy/opa-cli.js';
import { opaCapabilitiesFile } from '../policy/build.js';
import { inDir } from './opa-paths.js';
import { isRegoTestFile, summariseCoverage, type CoverageSummary } from './coverage.js';
import { parseTestResults, summariseTests, type RegoTestResult, type RegoTestSummary } from './opa-results.js';

/**
 * `opa test` on a policy directory, in bundle mode (-b) as `opa build` reads it: only data.json /
 * data.yaml files are data, so scenario YAML files next to the policy are not loaded as data.
 */

export interface RegoTestRun {
  results: RegoTestResult[];
  summary: RegoTestSummary;
  /** opa could not run the tests at all (a file does not parse, ...): its message. */
  failure: string | null;
}

export interface RegoTestOptions {
  /** Only tests whose name matches this (Go) regular expression: opa test --run. */
  run?: string | null;
}

function runArgs(o: RegoTestOptions): string[] {
  return o.run ? ['--run', o.run] : [];
}

export async function runRegoTests(dir: string, o: RegoTestOptions = {}): Promise<RegoTestRun> {
  const r = await runOpa(['test', '--format', 'json', '--capabilities', await opaCapabilitiesFile(), ...runArgs(o), '-b', '.'], { cwd: dir });
  const display = inDir(dir);
  const results = parseTestResults(r.stdout)?.map((t) => ({ ...t, file: t.file === null ? null : display(t.file) })) ?? null;
  if (results === null) {
    const msg = (r.stderr.trim() || r.stdout.trim() || `opa test exited with ${r.code}`).replace(/^\d+ errors? occurred( during loading)?:\s*/, '');
    return { results: [], summary: summariseTests([]), failure: msg };
  }
  return { results, summary: summariseTests(results), failure: null };
}

export interface CoverageRun {
  coverage: CoverageSummary | null;
  /** Why there is no coverage. */
  note: string | null;
}

/** Line coverage of the policy files (tests left out) by the Rego tests. */
export async function regoTestCoverage(dir: string, o: RegoTestOptions = {}): Promise<CoverageRun> {
  const r = await runOpa(['test', '--coverage', '--format', 'json', '--capabilities', await opaCapabilitiesFile(), ...runArgs(o), '-b', '.'], { cwd: dir });
  let doc: unknown = null;
  try {
    doc = JSON.parse(r.stdout);
  } catch {
    // opa test prints the failures instead of a coverage report when a test fails.
  }
  const coverage = summariseCoverage(doc, { exclude: isRegoTestFile, display: inDir(dir) });
  if (!coverage) return { coverage: null, note: 'opa test reports coverage only when every Rego test passes' };
  return { coverage, note: null };
}
