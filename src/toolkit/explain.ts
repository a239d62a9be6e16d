import { readFile } from 'node:fs/promises';
import type { WasmPolicy } from '../policy/engine.js';
import type { Decision, PolicyInput } from '../contract/policy.js';
import { buildCallInput, type CallSpec } from './call-input.js';
import { decisionDifferences } from './decision-diff.js';
import { decisionFromValues, evaluateTraced, type TraceMode } from './interpreter.js';
import { contributingRules, traceFiles, traceNotes, type ContributingRule, type TraceNote } from './trace.js';

/**
 * One call, explained: the WASM decision (what the mesh would answer) and, from OPA's interpreter
 * on the Rego source, the rules that contributed, the trace() notes, and whether both agree.
 */

export interface ExplainResult {
  input: PolicyInput;
  nowNs: bigint;
  revision: string;
  wasm: Decision;
  builtinErrors: string[];
  interpreter: Decision | null;
  interpreterError: string | null;
  /** Fields on which WASM and interpreter disagree (empty when they agree). */
  disagreement: string[];
  rules: ContributingRule[];
  notes: TraceNote[];
  /** opa's own pretty trace, when a trace mode was asked for. */
  pretty: string | null;
}

export interface ExplainOptions {
  dir: string;
  /** The call; its mode says which contract (and input shape) to evaluate. */
  call: CallSpec;
  traceMode: TraceMode | null;
}

async function readSources(files: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  await Promise.all(files.map(async (f) => {
    try {
      out.set(f, await readFile(f, 'utf8'));
    } catch {
      // A file the trace names but we cannot read only loses its head line in the output.
    }
  }));
  return out;
}

export async function explainCall(policy: WasmPolicy, o: ExplainOptions): Promise<ExplainResult> {
  const input = buildCallInput(o.call);
  const wasm = policy.evaluate(input, { nowNs: o.call.nowNs });
  const builtinErrors = [...policy.lastBuiltinErrors];
  let interpreter: Decision | null = null;
  let interpreterError: string | null = null;
  let rules: ContributingRule[] = [];
  let notes: TraceNote[] = [];
  let pretty: string | null = null;
  try {
    const mode = o.call.mode;
    const t = await evaluateTraced(o.dir, mode, input, o.traceMode);
    interpreter = decisionFromValues(mode, t.values);
    const sources = await readSources(traceFiles(t.trace));
    rules = contributingRules(t.trace, sources, mode === 'envoy' ? 'envoy.authz' : 'tollgate.authz');
    notes = traceNotes(t.trace);
    pretty = t.pretty;
  } catch (e) {
    interpreterError = (e as Error).message;
  }
  return {
    input, nowNs: o.call.nowNs, revision: policy.revision, wasm, builtinErrors, interpreter, interpreterError,
    disagreement: interpreter ? decisionDifferences(wasm, interpreter) : [], rules, notes, pretty,
  };
}
