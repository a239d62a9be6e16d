import { createRequire } from 'node:module';
import type * as OpaWasm from '@open-policy-agent/opa-wasm';
import type { HostBuiltin } from './builtins.js';

/**
 * One compiled policy module and the instance that evaluates it, on @open-policy-agent/opa-wasm.
 *
 * The SDK loads the module, wires the builtin imports and sets the data. Evaluation drives the
 * OPA ABI's evaluation context directly (opa_malloc, opa_json_parse, opa_eval_ctx_*, eval) rather
 * than the SDK's evaluate() or the one-call `opa_eval`, because both of those reset the WASM heap
 * before every evaluation, and resetting the heap also empties OPA's builtin caches: every
 * `regex.match` then compiles its RE2 pattern again, on every call (about 5% of authz CPU with
 * the example policies). Here the heap is kept across evaluations and reset only once it has
 * grown past `heapEpochBytes` since the data: patterns are compiled once per epoch, and the
 * allocator hands out fresh memory instead of searching free lists. What an evaluation leaves in
 * the heap is only reachable through those caches (OPA's memo table and result set are made anew
 * by every eval), so a decision cannot see an earlier call's input.
 *
 * After any failure (a Rego runtime error aborts out of the WASM, a host builtin throws, memory
 * runs out) the instance is discarded and a fresh one made from the compiled module: an abort
 * unwinds past the WASM's own stack bookkeeping, and a few hundred of them in a row were measured
 * to corrupt the instance. The next call therefore always starts clean.
 */

// The package's ESM entry exports only loadPolicy; loadPolicySync lives on the CommonJS export.
const opa = createRequire(import.meta.url)('@open-policy-agent/opa-wasm') as typeof OpaWasm;

type LoadedPolicy = OpaWasm.LoadedPolicy;

/*
 * The project compiles against lib ES2022 without DOM, where the WebAssembly namespace is not
 * declared; these are the few parts of it used here.
 */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
/** A compiled module (opaque). */
export interface WasmModule {
  readonly __wasmModule: unique symbol;
}
interface WasmApi {
  compile(bytes: Uint8Array): Promise<WasmModule>;
}
const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** The ABI 1.0 exports evaluation uses (present in every module `opa build -t wasm` writes). */
interface OpaExports {
  opa_malloc(size: number): number;
  opa_json_parse(addr: number, len: number): number;
  opa_json_dump(value: number): number;
  opa_eval_ctx_new(): number;
  opa_eval_ctx_set_input(ctx: number, input: number): void;
  opa_eval_ctx_set_data(ctx: number, data: number): void;
  opa_eval_ctx_set_entrypoint(ctx: number, entrypoint: number): void;
  opa_eval_ctx_get_result(ctx: number): number;
  eval(ctx: number): number;
  opa_heap_ptr_get(): number;
  opa_heap_ptr_set(ptr: number): void;
  builtins(): number;
}

const REQUIRED_EXPORTS: readonly (keyof OpaExports)[] = [
  'opa_malloc', 'opa_json_parse', 'opa_json_dump', 'opa_eval_ctx_new', 'opa_eval_ctx_set_input', 'opa_eval_ctx_set_data',
  'opa_eval_ctx_set_entrypoint', 'opa_eval_ctx_get_result', 'eval', 'opa_heap_ptr_get', 'opa_heap_ptr_set', 'builtins',
];

export interface RuntimeLimits {
  /** Initial WASM memory, in 64 KiB pages. */
  initialPages: number;
  /** Hard ceiling: an evaluation needing more fails (and denies) instead of eating the host's memory. */
  maximumPages: number;
  /** After an evaluation leaves memory larger than this, the instance is renewed to give it back. */
  recycleBytes: number;
  /**
   * The heap is reset (and OPA's builtin caches with it) before an evaluation once it has grown
   * this much since the data. Each example-policy evaluation leaves 50-100 KB, so 4 MiB keeps
   * compiled patterns for about fifty calls; measured on 2,589 logged benchmark inputs, CPU per
   * evaluation was 168 µs resetting every call, 144 µs with 1 MiB, 124 µs with 4 MiB, 112 µs
   * with 16 MiB. The epoch is paid in resident memory once touched, hence the middle value.
   */
  heapEpochBytes: number;
}

export const DEFAULT_LIMITS: RuntimeLimits = { initialPages: 16, maximumPages: 4096, recycleBytes: 64 * 1024 * 1024, heapEpochBytes: 4 * 1024 * 1024 };

/** An evaluation that did not produce a result; the message is what the policy author needs. */
export class PolicyEvalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PolicyEvalError';
  }
}

/** Messages come out of the WASM as strings (opa_abort), Errors, or {message} objects (the SDK). */
export function errorMessage(e: unknown): string {
  if (typeof e === 'string') return e;
  if (e instanceof Error) return e.message;
  if (typeof e === 'object' && e !== null && typeof (e as { message?: unknown }).message === 'string') return (e as { message: string }).message;
  return String(e);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function readCString(memory: WasmMemory, addr: number): string {
  const bytes = new Uint8Array(memory.buffer);
  const end = bytes.indexOf(0, addr);
  if (end < 0) throw new PolicyEvalError('policy result is not terminated in WASM memory');
  return decoder.decode(bytes.subarray(addr, end));
}

export class WasmRuntime {
  private loaded!: LoadedPolicy;
  private exports!: OpaExports;
  private readonly dataBytes: ArrayBuffer;
  /** Entrypoint name → id, from the module itself. */
  readonly entrypoints: ReadonlyMap<string, number>;
  /** Host builtins the module imports (names). */
  readonly requiredBuiltins: readonly string[];
  renewals = 0;
  /** Views over WASM memory, rebuilt only when the memory grows (growth detaches the buffer). */
  private viewBuffer: ArrayBuffer | null = null;
  private bytes = new Uint8Array(0);

  constructor(
    private readonly module: WasmModule,
    dataJson: string,
    private readonly builtins: Record<string, HostBuiltin>,
    private readonly limits: RuntimeLimits = DEFAULT_LIMITS,
  ) {
    const bytes = encoder.encode(dataJson);
    this.dataBytes = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    this.instantiate();
    const eps = this.loaded.entrypoints as Record<string, number>;
    this.entrypoints = new Map(Object.entries(eps));
    this.requiredBuiltins = Object.keys(this.dumpJson(this.exports.builtins()) as Record<string, number>).sort();
  }

  /**
   * Compiles a module (once per bundle; instances are cheap to make from it). Asynchronously:
   * V8 then validates and compiles on its own threads, where `new WebAssembly.Module` does it on
   * the event loop that is serving Checks with the previous policy meanwhile.
   */
  static async compile(wasm: Uint8Array): Promise<WasmModule> {
    try {
      return await WA.compile(wasm);
    } catch (e) {
      throw new Error(`policy.wasm is not a valid WebAssembly module: ${errorMessage(e)}`);
    }
  }

  private instantiate(): void {
    const memory = { initial: this.limits.initialPages, maximum: this.limits.maximumPages };
    let loaded: LoadedPolicy;
    try {
      loaded = opa.loadPolicySync(this.module, memory, this.builtins);
    } catch (e) {
      throw new Error(`policy.wasm cannot be instantiated as an OPA policy: ${errorMessage(e)}`);
    }
    try {
      loaded.setData(this.dataBytes);
    } catch (e) {
      throw new Error(`bundle data cannot be loaded into the policy: ${errorMessage(e)}`);
    }
    const instance = (loaded.wasmInstance as unknown as { exports: Partial<OpaExports> }).exports;
    const absent = REQUIRED_EXPORTS.filter((name) => typeof instance[name] !== 'function');
    if (absent.length) {
      throw new Error(`policy.wasm does not export the OPA ABI (${absent.join(', ')} missing): build it with \`opa build -t wasm\``);
    }
    this.loaded = loaded;
    this.exports = instance as OpaExports;
    this.viewBuffer = null;
  }

  private get memory(): WasmMemory {
    return this.loaded.mem as unknown as WasmMemory;
  }

  private dumpJson(addr: number): unknown {
    return JSON.parse(readCString(this.memory, this.exports.opa_json_dump(addr)));
  }

  /** Replaces the instance with a fresh one (after a failure, or to release grown memory). */
  renew(): void {
    this.instantiate();
    this.renewals++;
  }

  /**
   * Evaluates one entrypoint. Returns OPA's result set (`[]` when undefined, `[{"result": x}]`
   * otherwise). Throws PolicyEvalError; the instance is renewed before it does.
   */
  evaluate(entrypoint: number, inputJson: string): unknown {
    try {
      const result = this.evalKeepingHeap(entrypoint, inputJson);
      if (this.memory.buffer.byteLength > this.limits.recycleBytes) this.renewQuietly();
      return result;
    } catch (e) {
      const message = errorMessage(e);
      this.renewQuietly();
      throw new PolicyEvalError(message);
    }
  }

  private renewQuietly(): void {
    try {
      this.renew();
    } catch {
      // Left as is: the next evaluation fails again and denies, which is the safe outcome.
    }
  }

  /** Heap bytes in use above the data: what evaluations have left since the last reset. */
  get heapInUse(): number {
    return this.exports.opa_heap_ptr_get() - (this.loaded.dataHeapPtr as number);
  }

  private views(): void {
    const buffer = this.memory.buffer;
    if (buffer === this.viewBuffer) return;
    this.viewBuffer = buffer;
    this.bytes = new Uint8Array(buffer);
  }

  private evalKeepingHeap(entrypoint: number, inputJson: string): unknown {
    const x = this.exports;
    const base = this.loaded.dataHeapPtr as number;
    if (x.opa_heap_ptr_get() - base > this.limits.heapEpochBytes) x.opa_heap_ptr_set(base);
    const length = Buffer.byteLength(inputJson, 'utf8');
    const at = x.opa_malloc(length);
    // opa_malloc may have grown memory, which detaches the previous buffer.
    this.views();
    encoder.encodeInto(inputJson, this.bytes.subarray(at, at + length));
    const input = x.opa_json_parse(at, length);
    if (input === 0) throw new PolicyEvalError('the policy input is not valid JSON');
    const ctx = x.opa_eval_ctx_new();
    x.opa_eval_ctx_set_input(ctx, input);
    x.opa_eval_ctx_set_data(ctx, this.loaded.dataAddr as number);
    x.opa_eval_ctx_set_entrypoint(ctx, entrypoint);
    x.eval(ctx);
    const out = x.opa_json_dump(x.opa_eval_ctx_get_result(ctx));
    this.views();
    const end = this.bytes.indexOf(0, out);
    if (end < 0) throw new PolicyEvalError('policy result is not terminated in WASM memory');
    return JSON.parse(decoder.decode(this.bytes.subarray(out, end)));
  }
}
