import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { readBundle, type BundleFiles } from '../bundle/archive.js';
import { bundleData, contentRevision, readManifest, wasmModuleBytes } from './bundle-content.js';
import { buildPolicyBundle, ALLOW_ENTRYPOINT, DECISION_ENTRYPOINT, ENVOY_ENTRYPOINT, MASK_ENTRYPOINT, type BuildOptions } from './build.js';
import { hostAnsweredBuiltins } from './builtin-support.js';
import { createHostBuiltins, EvalContext, type Clock } from './builtins.js';
import { loadSqlParser } from './builtin-sql.js';
import { deny, normaliseDecision, normaliseEnvoyCompat } from './decision.js';
import type { Decision, PolicyEvaluator, PolicyInput } from '../contract/policy.js';
import { DEFAULT_LIMITS, WasmRuntime, type RuntimeLimits } from './wasm.js';

/**
 * A loaded policy: the contract's entrypoints looked up once, one WASM instance reused for every
 * call, and results turned into Decisions. evaluate() never throws and never allows by accident:
 * a runtime error, a trap or a malformed result is a deny whose reason says what went wrong.
 */

export type EntrypointMode = 'tollgate' | 'envoy';

export interface LoadOptions {
  /** Which contract to evaluate: tollgate.authz (default) or opa-envoy-plugin's envoy.authz. */
  entrypoint?: EntrypointMode;
  /** Overrides the bundle's manifest revision. */
  revision?: string;
  /** Source of time.now_ns when an evaluation does not pin it (tests). */
  clock?: Clock;
  limits?: Partial<RuntimeLimits>;
}

export interface EvaluateOptions {
  /** Evaluate as of this time (time.now_ns, token expiry): replay of recorded decisions, tests. */
  nowNs?: bigint;
}

/** Raw outcome of one entrypoint, for tools that show what the policy returned (test, explain). */
export type RawResult =
  | { ok: true; defined: false }
  | { ok: true; defined: true; value: unknown }
  | { ok: false; error: string };

/** The decision-log event a `system.log.mask` rule sees as `input`, as in OPA. */
export interface MaskEvent {
  result?: unknown;
  decision_id?: string;
  path?: string;
  [field: string]: unknown;
}

/** Erasing the whole input is the safe answer when the mask policy itself fails. */
export const MASK_FAILURE_RESULT: readonly string[] = Object.freeze(['/input']);

function singleResult(rs: unknown): { defined: false } | { defined: true; value: unknown } | { error: string } {
  if (!Array.isArray(rs)) return { error: 'the WASM returned no result set' };
  if (rs.length === 0) return { defined: false };
  if (rs.length > 1) return { error: `the entrypoint produced ${rs.length} results instead of one` };
  const first = rs[0] as { result?: unknown } | null;
  if (typeof first !== 'object' || first === null || !('result' in first)) return { error: 'the WASM result set has no "result"' };
  return { defined: true, value: first.result };
}

export class WasmPolicy implements PolicyEvaluator {
  readonly revision: string;
  readonly mode: EntrypointMode;
  /** Entrypoints compiled into the module. */
  readonly entrypoints: string[];
  readonly hasMask: boolean;
  private readonly decisionId: number | null;
  private readonly allowId: number | null;
  private readonly envoyId: number | null;
  private readonly maskId: number | null;
  private evaluations = 0;
  private failures = 0;

  constructor(
    private readonly runtime: WasmRuntime,
    private readonly ctx: EvalContext,
    mode: EntrypointMode,
    revision: string,
  ) {
    this.mode = mode;
    this.revision = revision;
    const ep = runtime.entrypoints;
    this.entrypoints = [...ep.keys()].sort();
    this.decisionId = ep.get(DECISION_ENTRYPOINT) ?? null;
    this.allowId = ep.get(ALLOW_ENTRYPOINT) ?? null;
    this.envoyId = ep.get(ENVOY_ENTRYPOINT) ?? null;
    this.maskId = ep.get(MASK_ENTRYPOINT) ?? null;
    this.hasMask = this.maskId !== null;
    if (mode === 'tollgate' && this.decisionId === null && this.allowId === null) {
      throw new Error(`bundle has neither ${DECISION_ENTRYPOINT} nor ${ALLOW_ENTRYPOINT} as an entrypoint (it has: ${this.entrypoints.join(', ') || 'none'}); ` +
        'define data.tollgate.authz.decision, or configure policy.entrypoint: envoy for an opa-envoy-plugin policy');
    }
    if (mode === 'envoy' && this.envoyId === null) {
      throw new Error(`bundle has no ${ENVOY_ENTRYPOINT} entrypoint (it has: ${this.entrypoints.join(', ') || 'none'}); define data.envoy.authz.allow`);
    }
  }

  evaluate(input: PolicyInput, opts?: EvaluateOptions): Decision {
    let json: string;
    try {
      json = JSON.stringify(input);
    } catch (e) {
      return deny(`policy evaluation failed: the input cannot be serialised: ${(e as Error).message}`);
    }
    if (this.maskId !== null) this.lastInput = { input, json };
    return this.evaluateJson(json, opts);
  }

  /**
   * The input evaluate() serialised last: the decision log's mask evaluation of the same call
   * reuses its JSON instead of serialising the input a second time. Held by identity, and inputs
   * are not changed after evaluation (Check builds one per call), so a hit is the same document.
   */
  private lastInput: { input: PolicyInput; json: string } | null = null;

  /** Same as evaluate() for an input already serialised (saves a stringify per batch element). */
  evaluateJson(inputJson: string, opts?: EvaluateOptions): Decision {
    this.evaluations++;
    this.ctx.begin(opts?.nowNs);
    try {
      return this.mode === 'envoy' ? this.decideEnvoy(inputJson) : this.decideTollgate(inputJson);
    } catch (e) {
      this.failures++;
      return deny(`policy evaluation failed: ${(e as Error).message}`);
    }
  }

  private run(id: number, json: string): { defined: false } | { defined: true; value: unknown } {
    const r = singleResult(this.runtime.evaluate(id, json));
    if ('error' in r) throw new Error(r.error);
    return r;
  }

  private decideTollgate(json: string): Decision {
    if (this.decisionId !== null) {
      const r = this.run(this.decisionId, json);
      if (r.defined) return normaliseDecision(r.value);
    }
    if (this.allowId !== null) {
      const r = this.run(this.allowId, json);
      if (r.defined) {
        if (typeof r.value !== 'boolean') return normaliseDecision(r.value);
        return r.value ? normaliseDecision(true) : deny('denied by policy: data.tollgate.authz.allow is false for this call (the policy gives no reason)');
      }
    }
    return deny('denied by policy: no rule decided this call (data.tollgate.authz.decision and allow are undefined for it); add a default decision to the policy');
  }

  private decideEnvoy(json: string): Decision {
    const r = this.run(this.envoyId!, json);
    if (!r.defined) return deny('denied by policy: data.envoy.authz.allow is undefined for this call (add `default allow := false`)');
    return normaliseEnvoyCompat(r.value);
  }

  /**
   * The raw `system.log.mask` result for a decision, or undefined when the policy has no mask rule
   * or it is undefined here. As in OPA, the mask rule sees the decision-log event as `input`, so
   * the policy input is `input.input` there. A failing mask rule yields ["/input"] (erase it all).
   */
  evaluateMask(input: PolicyInput, event: MaskEvent = {}, opts?: EvaluateOptions): unknown {
    if (this.maskId === null) return undefined;
    this.ctx.begin(opts?.nowNs);
    try {
      const last = this.lastInput;
      this.lastInput = null;
      const json = last?.input === input && Object.keys(event).length === 0 ? `{"input":${last.json}}` : JSON.stringify({ ...event, input });
      const r = this.run(this.maskId, json);
      return r.defined ? r.value : undefined;
    } catch {
      this.failures++;
      return [...MASK_FAILURE_RESULT];
    }
  }

  /** Any compiled entrypoint, raw: what tooling shows authors. Never throws. */
  evaluateEntrypoint(entrypoint: string, input: unknown, opts?: EvaluateOptions): RawResult {
    const id = this.runtime.entrypoints.get(entrypoint);
    if (id === undefined) return { ok: false, error: `entrypoint ${entrypoint} is not compiled into this bundle (it has: ${this.entrypoints.join(', ')})` };
    this.ctx.begin(opts?.nowNs);
    try {
      const r = this.run(id, JSON.stringify(input === undefined ? null : input));
      return r.defined ? { ok: true, defined: true, value: r.value } : { ok: true, defined: false };
    } catch (e) {
      return { ok: false, error: (e as Error).message };
    }
  }

  /** Builtin failures of the last evaluation (each made an expression undefined, as in OPA). */
  get lastBuiltinErrors(): readonly string[] {
    return this.ctx.builtinErrors;
  }

  get stats(): { evaluations: number; failures: number; renewals: number } {
    return { evaluations: this.evaluations, failures: this.failures, renewals: this.runtime.renewals };
  }
}

/**
 * Loads a bundle's WASM into a ready evaluator. Everything that can be wrong with a bundle (no
 * module, bad data, missing entrypoint, a builtin nobody can answer) is an error here, at load
 * time, never on the request path.
 */
export async function loadPolicy(files: BundleFiles, opts: LoadOptions = {}): Promise<WasmPolicy> {
  const manifest = readManifest(files);
  const wasm = wasmModuleBytes(files, manifest);
  const data = bundleData(files);
  // Loading happens while the previous policy serves on this event loop: each step that costs
  // time in proportion to the bundle (parsing data, compiling, instantiating and loading data
  // into the instance) runs in a task of its own, so Checks are answered between them.
  await yieldToLoop();
  const module = await WasmRuntime.compile(wasm);
  await yieldToLoop();
  const ctx = new EvalContext(opts.clock);
  const runtime = new WasmRuntime(module, data.json, createHostBuiltins(ctx), { ...DEFAULT_LIMITS, ...opts.limits });
  const answered = hostAnsweredBuiltins();
  const missing = runtime.requiredBuiltins.filter((b) => !answered.has(b));
  if (missing.length) {
    throw new Error(`the policy calls builtin(s) ${missing.join(', ')}, which Tollgate cannot evaluate in WebAssembly; ` +
      'rebuild with `tollgate policy build` to see where (policies/README.md lists the supported builtins)');
  }
  // The SQL parser is WebAssembly too, loaded once per process, before the first evaluation needs it.
  if (runtime.requiredBuiltins.includes('tollgate.sql.analyze')) await loadSqlParser();
  const revision = opts.revision ?? (manifest.revision || contentRevision(wasm, data.json));
  return new WasmPolicy(runtime, ctx, opts.entrypoint ?? 'tollgate', revision);
}

/** build + read + load: a policy directory straight to an evaluator. */
export async function loadPolicyFromDir(dir: string, opts: LoadOptions & Pick<BuildOptions, 'entrypoints'> = {}): Promise<WasmPolicy> {
  const { entrypoints, ...load } = opts;
  const bundle = await buildPolicyBundle(dir, { ...(entrypoints ? { entrypoints } : {}), ...(load.revision !== undefined ? { revision: load.revision } : {}) });
  return loadPolicy(await readBundle(bundle), load);
}

