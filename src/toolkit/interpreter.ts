import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IGNORED_IN_BUILD, opaCapabilitiesFile, policyListingRules } from '../policy/build.js';
import { deny, normaliseDecision, normaliseEnvoyCompat } from '../policy/decision.js';
import { runOpa } from '../policy/opa-cli.js';
import { inDir } from './opa-paths.js';
import { MOCK_WITH, writeHostMocks } from './host-mocks.js';
import type { Decision } from '../contract/policy.js';
import type { EntrypointMode } from './scenario-types.js';

/**
 * The same policy on OPA's interpreter (`opa eval` on the Rego source): a second opinion on what
 * the WASM decided, line coverage, and traces for explain. The WASM stays the authority (it is what
 * the mesh runs); a disagreement between the two is reported, never resolved silently.
 */

/** Raw values of the contract rules for one input; undefined members were undefined in OPA. */
export interface ContractValues {
  decision?: unknown;
  allow?: unknown;
}

export const ruleFor = (mode: EntrypointMode): string => (mode === 'envoy' ? 'data.envoy.authz.allow' : 'data.tollgate.authz.decision');

/** The Decision the engine would make from these values (the same fallbacks, fail closed). */
export function decisionFromValues(mode: EntrypointMode, v: ContractValues): Decision {
  if (mode === 'envoy') {
    return v.allow === undefined ? deny('denied by policy: data.envoy.authz.allow is undefined for this call') : normaliseEnvoyCompat(v.allow);
  }
  if (v.decision !== undefined) return normaliseDecision(v.decision);
  if (v.allow === undefined) return deny('denied by policy: no rule decided this call (data.tollgate.authz.decision and allow are undefined for it)');
  if (typeof v.allow !== 'boolean') return normaliseDecision(v.allow);
  return v.allow ? normaliseDecision(true) : deny('denied by policy: data.tollgate.authz.allow is false for this call');
}

/**
 * The input in a file, with the host builtins' answers for it (host-mocks.ts) and the listing rules
 * the build adds to the policy in `dir` (listing-rules.ts), so OPA's interpreter judges listings as
 * the WASM does: fn gets the input path and the extra `-d` arguments.
 */
async function withInputFile<T>(dir: string, input: unknown, inputs: readonly unknown[], fn: (path: string, extra: string[]) => Promise<T>): Promise<T> {
  const tmp = await mkdtemp(join(tmpdir(), 'tollgate-eval-'));
  try {
    const path = join(tmp, 'input.json');
    await writeFile(path, JSON.stringify(input));
    const listing = (await policyListingRules(dir)).modules;
    const listingArgs = await Promise.all(listing.map(async (m, i) => {
      const file = join(tmp, `tollgate_listing_generated_${i}.rego`);
      await writeFile(file, m);
      return ['-d', file];
    }));
    return await fn(path, [...await writeHostMocks(tmp, inputs), ...listingArgs.flat()]);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

// Run inside the policy directory, as the build does; file names are mapped back by the callers.
// With Tollgate's builtins declared: opa evaluates rules that call them as errors, not as
// compile failures of the whole policy (tollgate.sql.analyze runs only in the host).
const loadArgs = async (): Promise<string[]> => ['-b', '.', '--capabilities', await opaCapabilitiesFile(), ...IGNORED_IN_BUILD.flatMap((p) => ['--ignore', p])];
const inside = (dir: string) => ({ cwd: dir });

function evalFailure(stdout: string, stderr: string, code: number): string {
  try {
    const doc = JSON.parse(stdout) as { errors?: Array<{ message?: string; location?: { file?: string; row?: number } }> };
    if (Array.isArray(doc.errors) && doc.errors.length) {
      return doc.errors.map((e) => `${e.location?.file ? `${e.location.file}:${e.location.row ?? 0}: ` : ''}${e.message ?? ''}`).join('; ');
    }
  } catch {
    // not a JSON error report
  }
  return (stderr.trim() || stdout.trim() || `opa eval exited with ${code}`).split('\n')[0]!;
}

export interface BatchEvaluation {
  /** One entry per input, in order. */
  values: ContractValues[];
  /** OPA's raw coverage report (with --coverage), to merge with others before summarising. */
  coverage: unknown;
}

/**
 * Evaluates the contract rules for many inputs in one `opa eval` (with --coverage: which lines of
 * the policy these inputs exercise). Throws with opa's message if evaluation fails.
 */
export async function evaluateBatch(dir: string, mode: EntrypointMode, inputs: readonly unknown[], coverage: boolean): Promise<BatchEvaluation> {
  const rules = mode === 'envoy' ? { allow: 'data.envoy.authz.allow' } : { decision: 'data.tollgate.authz.decision', allow: 'data.tollgate.authz.allow' };
  // Objects keyed by position, so an input for which a rule is undefined just has no entry.
  const parts = Object.entries(rules).map(([k, ref]) => `"${k}": {k: v | some k, i in input; v := ${ref} with input as i${MOCK_WITH}}`);
  const query = `x := {${parts.join(', ')}}`;
  return withInputFile(dir, inputs, inputs, async (inputPath, mocks) => {
    const r = await runOpa(['eval', '--format', 'json', ...(coverage ? ['--coverage'] : []), ...(await loadArgs()), ...mocks, '-i', inputPath, query], inside(dir));
    if (r.code !== 0) throw new Error(`opa eval failed: ${evalFailure(r.stdout, r.stderr, r.code)}`);
    const doc = JSON.parse(r.stdout) as { result?: Array<{ bindings?: { x?: Record<string, Record<string, unknown>> } }>; coverage?: unknown };
    const x = doc.result?.[0]?.bindings?.x ?? {};
    const values = inputs.map((_, i): ContractValues => {
      const v: ContractValues = {};
      for (const k of Object.keys(rules) as Array<keyof ContractValues>) {
        const byIndex = x[k] ?? {};
        if (Object.prototype.hasOwnProperty.call(byIndex, String(i))) v[k] = byIndex[String(i)];
      }
      return v;
    });
    return { values, coverage: coverage ? doc.coverage ?? null : null };
  });
}

export type TraceMode = 'notes' | 'fails' | 'full' | 'debug';

export interface TracedEvaluation {
  values: ContractValues;
  /** The `explanation` array of `opa eval --explain full --format json`. */
  trace: unknown[];
  /** `opa eval --explain MODE --format pretty`, when asked for. */
  pretty: string | null;
}

/** One input on the interpreter with a full trace (and optionally opa's own pretty trace). */
export async function evaluateTraced(dir: string, mode: EntrypointMode, input: unknown, prettyMode: TraceMode | null): Promise<TracedEvaluation> {
  const query = ruleFor(mode) + MOCK_WITH;
  return withInputFile(dir, input, [input], async (inputPath, mocks) => {
    const full = await runOpa(['eval', '--format', 'json', '--explain', 'full', ...(await loadArgs()), ...mocks, '-i', inputPath, query], inside(dir));
    if (full.code !== 0) throw new Error(`opa eval failed: ${evalFailure(full.stdout, full.stderr, full.code)}`);
    const doc = JSON.parse(full.stdout) as { result?: Array<{ expressions?: Array<{ value?: unknown }> }>; explanation?: unknown[] };
    const first = doc.result?.[0]?.expressions?.[0];
    const values: ContractValues = {};
    if (first && 'value' in first) values[mode === 'envoy' ? 'allow' : 'decision'] = first.value;
    if (mode === 'tollgate' && values.decision === undefined) {
      // The fallback rule, asked only when the decision is undefined (as the engine does).
      const a = await runOpa(['eval', '--format', 'json', ...(await loadArgs()), ...mocks, '-i', inputPath, 'data.tollgate.authz.allow' + MOCK_WITH], inside(dir));
      const ad = a.code === 0 ? (JSON.parse(a.stdout) as { result?: Array<{ expressions?: Array<{ value?: unknown }> }> }) : {};
      const av = ad.result?.[0]?.expressions?.[0];
      if (av && 'value' in av) values.allow = av.value;
    }
    let pretty: string | null = null;
    if (prettyMode) {
      const p = await runOpa(['eval', '--format', 'pretty', '--explain', prettyMode, ...(await loadArgs()), ...mocks, '-i', inputPath, query], inside(dir));
      pretty = (p.stdout + (p.code !== 0 ? p.stderr : '')).trimEnd();
    }
    const trace = Array.isArray(doc.explanation) ? doc.explanation : [];
    for (const ev of trace as Array<{ Location?: { file?: unknown } }>) {
      if (ev.Location && typeof ev.Location.file === 'string' && ev.Location.file) ev.Location.file = inDir(dir)(ev.Location.file);
    }
    return { values, trace, pretty };
  });
}
