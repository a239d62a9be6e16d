import type { EvaluateOptions } from '../policy/engine.js';
import type { Decision, PolicyInput } from '../contract/policy.js';
import { buildCallInput, CallRefusedError } from './call-input.js';
import { compareDecision, type Mismatch } from './expect.js';
import type { EntrypointMode, Scenario, ScenarioFile } from './scenario-types.js';

/**
 * Runs scenario cases through an evaluator (the loaded WASM policy, in production terms: the same
 * evaluate() authz calls). No I/O: the caller loads the policy and the files.
 */

export interface ScenarioEvaluator {
  evaluate(input: PolicyInput, opts?: EvaluateOptions): Decision;
  readonly lastBuiltinErrors?: readonly string[];
}

export type CaseStatus = 'pass' | 'fail' | 'error';

export interface CaseResult {
  file: string;
  name: string;
  index: number;
  line: number;
  entrypoint: EntrypointMode;
  status: CaseStatus;
  mismatches: Mismatch[];
  decision: Decision | null;
  /** Why the case could not be evaluated (status "error"). */
  error: string | null;
  /** Builtin calls that failed during evaluation (each made an expression undefined, as in OPA). */
  builtinErrors: string[];
  input: PolicyInput | null;
  nowNs: bigint;
  /** The case (or its file) sets time:, rather than evaluating at the current time. */
  timePinned: boolean;
}

export interface RunOptions {
  /** Only cases whose name matches. */
  match?: RegExp | null;
  /** Time for cases that do not set one. */
  now: () => bigint;
}

/** An evaluator per entrypoint, or the reason there is none (e.g. the policy has no envoy.authz.allow). */
export type EvaluatorFor = (mode: EntrypointMode) => ScenarioEvaluator | { error: string };

function runCase(file: ScenarioFile, s: Scenario, evaluatorFor: EvaluatorFor, now: () => bigint): CaseResult {
  const nowNs = s.timeNs ?? now();
  const base: CaseResult = {
    file: file.file, name: s.name, index: s.index, line: s.line, entrypoint: file.entrypoint,
    status: 'error', mismatches: [], decision: null, error: null, builtinErrors: [], input: null, nowNs, timePinned: s.timeNs !== null,
  };
  const ev = evaluatorFor(file.entrypoint);
  if ('error' in ev) return { ...base, error: ev.error };
  let input: PolicyInput;
  try {
    input = buildCallInput({ server: s.server, namespace: s.namespace, identity: s.identity, request: s.request, budget: s.budget, annotations: s.annotations, nowNs, mode: file.entrypoint });
  } catch (e) {
    if (e instanceof CallRefusedError) return { ...base, error: e.message };
    throw e;
  }
  const decision = ev.evaluate(input, { nowNs });
  const mismatches = compareDecision(s.expect, decision);
  return {
    ...base, input, decision, mismatches, builtinErrors: [...(ev.lastBuiltinErrors ?? [])],
    status: mismatches.length ? 'fail' : 'pass',
  };
}

export function selectCases(files: readonly ScenarioFile[], match: RegExp | null | undefined): Array<{ file: ScenarioFile; scenario: Scenario }> {
  return files.flatMap((file) => file.cases.filter((s) => !match || match.test(s.name)).map((scenario) => ({ file, scenario })));
}

export function runScenarios(files: readonly ScenarioFile[], evaluatorFor: EvaluatorFor, opts: RunOptions): CaseResult[] {
  return selectCases(files, opts.match).map(({ file, scenario }) => runCase(file, scenario, evaluatorFor, opts.now));
}

export interface ScenarioSummary {
  files: number;
  cases: number;
  passed: number;
  failed: number;
  errors: number;
}

export function summarise(files: readonly ScenarioFile[], results: readonly CaseResult[]): ScenarioSummary {
  return {
    files: files.length,
    cases: results.length,
    passed: results.filter((r) => r.status === 'pass').length,
    failed: results.filter((r) => r.status === 'fail').length,
    errors: results.filter((r) => r.status === 'error').length,
  };
}
