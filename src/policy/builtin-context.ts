/** A host builtin's type and the per-evaluation state builtins share (src/policy/builtins.ts binds them). */
export type HostBuiltin = (...args: unknown[]) => unknown;

export type Clock = () => bigint;

/** Wall-clock time in ns (millisecond resolution: Date.now is the only wall clock Node offers). */
export const wallClockNs: Clock = () => BigInt(Date.now()) * 1_000_000n;

/**
 * State of the evaluation in progress. OPA reads the clock once per query, so every
 * time.now_ns() (and io.jwt.decode_verify's default time) in one evaluation sees the same value.
 */
export class EvalContext {
  private fixedNs: bigint | null = null;
  private currentNs: bigint | null = null;
  private errors: string[] | null = null;

  constructor(private readonly clock: Clock = wallClockNs) {}

  /** Starts an evaluation; `nowNs` pins the time (replay, tests), otherwise the clock is read lazily. */
  begin(nowNs?: bigint): void {
    this.fixedNs = nowNs ?? null;
    this.currentNs = null;
    this.errors = null;
  }

  nowNs(): bigint {
    if (this.currentNs === null) this.currentNs = this.fixedNs ?? this.clock();
    return this.currentNs;
  }

  recordError(message: string): void {
    (this.errors ??= []).push(message);
  }

  /** Builtin failures of the last evaluation (each made its expression undefined). */
  get builtinErrors(): readonly string[] {
    return this.errors ?? [];
  }
}
