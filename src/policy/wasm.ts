import { createRequire } from 'node:module';
import type * as OpaWasm from '@open-policy-agent/opa-wasm';
import type { HostBuiltin } from './builtins.js';

/**
 * One compiled policy module and the instance that evaluates it, on @open-policy-agent/opa-wasm.
 *
 * The SDK loads the module, wires the builtin imports and sets the data. Evaluation goes through
 * the ABI 1.2 `opa_eval` export directly rather than the SDK's evaluate(), for two reasons:
 * the input is encoded straight into WASM memory from a JSON string the caller may already have
 * (no intermediate copy), and the result is located with a native scan instead of a byte loop.
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

interface OpaExports {
  opa_eval(reserved: number, entrypoint: number, data: number, input: number, inputLen: number, heap: number, wantValue: number): number;
  opa_json_dump(value: number): number;
  builtins(): number;
}

const PAGE = 64 * 1024;

export interface RuntimeLimits {
  /** Initial WASM memory, in 64 KiB pages. */
  initialPages: number;
  /** Hard ceiling: an evaluation needing more fails (and denies) instead of eating the host's memory. */
  maximumPages: number;
  /** After an evaluation leaves memory larger than this, the instance is renewed to give it back. */
  recycleBytes: number;
}

export const DEFAULT_LIMITS: RuntimeLimits = { initialPages: 16, maximumPages: 4096, recycleBytes: 64 * 1024 * 1024 };

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
  private fast = false;
  private readonly dataBytes: ArrayBuffer;
  /** Entrypoint name → id, from the module itself. */
  readonly entrypoints: ReadonlyMap<string, number>;
  /** Host builtins the module imports (names). */
  readonly requiredBuiltins: readonly string[];
  renewals = 0;
  /** Views over WASM memory, rebuilt only when the memory grows (growth detaches the buffer). */
  private viewBuffer: ArrayBuffer | null = null;
  private bytes = new Uint8Array(0);
  private inputView = new Uint8Array(0);

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
    if (typeof instance.opa_json_dump !== 'function' || typeof instance.builtins !== 'function') {
      throw new Error('policy.wasm does not export the OPA ABI (opa_json_dump, builtins): build it with `opa build -t wasm`');
    }
    this.loaded = loaded;
    this.exports = instance as OpaExports;
    this.viewBuffer = null;
    this.fast = typeof instance.opa_eval === 'function' && typeof loaded.minorVersion === 'number' && loaded.minorVersion >= 2;
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
      const result = this.fast ? this.evalFast(entrypoint, inputJson) : this.loaded.evaluate(encodeBuffer(inputJson), entrypoint);
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

  private views(base: number): void {
    const buffer = this.memory.buffer;
    if (buffer === this.viewBuffer) return;
    this.viewBuffer = buffer;
    this.bytes = new Uint8Array(buffer);
    this.inputView = this.bytes.subarray(base);
  }

  private evalFast(entrypoint: number, inputJson: string): unknown {
    const mem = this.memory;
    const base = this.loaded.dataHeapPtr as number;
    // UTF-8 needs at most 3 bytes per UTF-16 unit; count exactly only when that bound does not fit.
    const room = mem.buffer.byteLength - base;
    if (inputJson.length * 3 > room) {
      const need = Buffer.byteLength(inputJson, 'utf8');
      if (need > room) mem.grow(Math.ceil((need - room) / PAGE));
    }
    this.views(base);
    const { written } = encoder.encodeInto(inputJson, this.inputView);
    const addr = this.exports.opa_eval(0, entrypoint, this.loaded.dataAddr, base, written, base + written, 0);
    // The evaluation may have grown memory; the result is read through a current view.
    this.views(base);
    const end = this.bytes.indexOf(0, addr);
    if (end < 0) throw new PolicyEvalError('policy result is not terminated in WASM memory');
    return JSON.parse(decoder.decode(this.bytes.subarray(addr, end)));
  }
}

function encodeBuffer(json: string): ArrayBuffer {
  const bytes = encoder.encode(json);
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}
