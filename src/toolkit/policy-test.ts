import { readFile } from 'node:fs/promises';
import { buildPolicyBundle, checkPolicies, PolicyBuildError } from '../policy/build.js';
import { readBundle, type BundleFiles } from '../bundle/archive.js';
import { loadPolicy, type WasmPolicy } from '../policy/engine.js';
import { wallClockNs } from '../policy/builtins.js';
import { MOCK_FILE } from './host-mocks.js';
import { isRegoTestFile, mergeCoverageReports, summariseCoverage, type CoverageSummary } from './coverage.js';
import { decisionDifferences } from './decision-diff.js';
import { expandGlob } from './glob.js';
import { inDir } from './opa-paths.js';
import { decisionFromValues, evaluateBatch } from './interpreter.js';
import { regoTestCoverage, runRegoTests, type CoverageRun, type RegoTestRun } from './opa-test.js';
import { parseScenarioText } from './scenario-parse.js';
import { runScenarios, summarise, type CaseResult, type EvaluatorFor, type ScenarioSummary } from './scenario-run.js';
import { ScenarioFormatError, type EntrypointMode, type ScenarioFile, type ScenarioProblem } from './scenario-types.js';

/**
 * `tollgate policy test`: strict check, `opa test`, then every scenario through the compiled WASM
 * (loadPolicy().evaluate(), as authz runs it), and with coverage the interpreter's view of the same
 * inputs. Orchestration only; the pieces are in their own modules.
 */

export interface PolicyTestOptions {
  dir: string;
  /** Glob of scenario files; default DIR/scenarios/**\/*.{yaml,yml}. */
  scenarios: string | null;
  /** Regular expression on case names (and Rego test names, via opa test --run). */
  run: string | null;
  coverage: boolean;
  now?: () => bigint;
}

export interface CrossCheck {
  compared: number;
  /** timePinned: the case sets time:, which the interpreter cannot (it reads the wall clock). */
  disagreements: Array<{ file: string; name: string; line: number; fields: string[]; timePinned: boolean }>;
  error: string | null;
}

export interface PolicyTestReport {
  dir: string;
  /** The policy does not build or check: nothing else ran. */
  buildError: string | null;
  rego: RegoTestRun | null;
  revision: string | null;
  scenarioGlob: string;
  scenarioFiles: string[];
  problems: ScenarioProblem[];
  results: CaseResult[];
  summary: ScenarioSummary;
  coverage: { tests: CoverageRun; scenarios: CoverageSummary | null; scenarioNote: string | null } | null;
  crossCheck: CrossCheck | null;
  ok: boolean;
}

export const defaultScenarioGlob = (dir: string): string => `${dir.replace(/\/+$/, '')}/scenarios/**/*.{yaml,yml}`;

async function loadScenarioFiles(paths: string[]): Promise<{ files: ScenarioFile[]; problems: ScenarioProblem[] }> {
  const files: ScenarioFile[] = [];
  const problems: ScenarioProblem[] = [];
  for (const path of paths) {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      problems.push({ file: path, line: null, caseIndex: null, field: null, message: `cannot read: ${(e as Error).message}` });
      continue;
    }
    try {
      files.push(parseScenarioText(text, path));
    } catch (e) {
      if (!(e instanceof ScenarioFormatError)) throw e;
      problems.push(...e.problems);
    }
  }
  return { files, problems };
}

/** One evaluator per entrypoint mode, loaded from the same bundle on first use. */
function evaluators(bundle: BundleFiles): { evaluatorFor: EvaluatorFor; load: (m: EntrypointMode) => Promise<void>; revision: () => string | null } {
  const loaded = new Map<EntrypointMode, WasmPolicy | { error: string }>();
  return {
    load: async (m) => {
      if (loaded.has(m)) return;
      try {
        loaded.set(m, await loadPolicy(bundle, { entrypoint: m }));
      } catch (e) {
        loaded.set(m, { error: `cannot evaluate with entrypoint ${m}: ${(e as Error).message}` });
      }
    },
    evaluatorFor: (m) => loaded.get(m) ?? { error: `entrypoint ${m} was not loaded` },
    revision: () => {
      for (const p of loaded.values()) if (!('error' in p)) return p.revision;
      return null;
    },
  };
}

/** The scenario inputs on OPA's interpreter, in one opa eval per entrypoint: decisions to compare, and coverage. */
async function crossCheckAndCoverage(dir: string, results: CaseResult[]): Promise<{ cross: CrossCheck; raw: unknown[] }> {
  const cross: CrossCheck = { compared: 0, disagreements: [], error: null };
  const raw: unknown[] = [];
  const evaluated = results.filter((r) => r.input && r.decision);
  for (const mode of ['tollgate', 'envoy'] as const) {
    const group = evaluated.filter((r) => r.entrypoint === mode);
    if (group.length === 0) continue;
    try {
      const batch = await evaluateBatch(dir, mode, group.map((r) => r.input), true);
      if (batch.coverage) raw.push(batch.coverage);
      group.forEach((r, i) => {
        const interp = decisionFromValues(mode, batch.values[i] ?? {});
        cross.compared++;
        const fields = decisionDifferences(r.decision!, interp);
        if (fields.length) cross.disagreements.push({ file: r.file, name: r.name, line: r.line, fields, timePinned: r.timePinned });
      });
    } catch (e) {
      cross.error = (e as Error).message;
    }
  }
  return { cross, raw };
}

export async function testPolicies(o: PolicyTestOptions): Promise<PolicyTestReport> {
  const now = o.now ?? wallClockNs;
  const glob = o.scenarios ?? defaultScenarioGlob(o.dir);
  const empty: PolicyTestReport = {
    dir: o.dir, buildError: null, rego: null, revision: null, scenarioGlob: glob, scenarioFiles: [], problems: [], results: [],
    summary: { files: 0, cases: 0, passed: 0, failed: 0, errors: 0 }, coverage: null, crossCheck: null, ok: false,
  };
  try {
    await checkPolicies(o.dir);
  } catch (e) {
    if (e instanceof PolicyBuildError) return { ...empty, buildError: e.message };
    throw e;
  }
  const paths = expandGlob(glob);
  const [rego, testCoverage, built, scenarioFiles] = await Promise.all([
    runRegoTests(o.dir, { run: o.run }),
    o.coverage ? regoTestCoverage(o.dir, { run: o.run }) : Promise.resolve(null),
    buildPolicyBundle(o.dir).then(readBundle).then((b) => ({ bundle: b, error: null }), (e: Error) => ({ bundle: null, error: e.message })),
    loadScenarioFiles(paths),
  ]);
  if (!built.bundle) return { ...empty, rego, buildError: built.error };
  const { files, problems } = scenarioFiles;
  if (o.scenarios !== null && paths.length === 0) {
    problems.push({ file: glob, line: null, caseIndex: null, field: null, message: 'no scenario files match this pattern' });
  }

  const ev = evaluators(built.bundle);
  for (const m of new Set(files.map((f) => f.entrypoint))) await ev.load(m);
  const match = o.run ? new RegExp(o.run) : null;
  const results = runScenarios(files, ev.evaluatorFor, { match, now });
  const summary = summarise(files, results);

  let coverage: PolicyTestReport['coverage'] = null;
  let crossCheck: CrossCheck | null = null;
  if (o.coverage) {
    const { cross, raw } = await crossCheckAndCoverage(o.dir, results);
    crossCheck = cross;
    const scen = raw.length ? summariseCoverage(mergeCoverageReports(raw), { exclude: (f) => isRegoTestFile(f) || f.endsWith(MOCK_FILE), display: inDir(o.dir) }) : null;
    coverage = {
      tests: testCoverage ?? { coverage: null, note: 'not measured' },
      scenarios: scen,
      scenarioNote: scen ? null : results.length === 0 ? 'no scenario was evaluated' : cross.error,
    };
  }
  const regoOk = rego.failure === null && rego.summary.failed === 0 && rego.summary.errors === 0;
  const ok = regoOk && problems.length === 0 && summary.failed === 0 && summary.errors === 0;
  return { ...empty, rego, revision: ev.revision(), scenarioFiles: paths, problems, results, summary, coverage, crossCheck, ok };
}
