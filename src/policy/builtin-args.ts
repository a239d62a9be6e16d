/** Operand checks and result encoding shared by the host builtins. */

export function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

export function stringArg(v: unknown, pos: number): string {
  if (typeof v !== 'string') throw new TypeError(`operand ${pos} must be string but got ${typeName(v)}`);
  return v;
}

export function numberArg(v: unknown, pos: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new TypeError(`operand ${pos} must be number but got ${typeName(v)}`);
  return v;
}

export function intArg(v: unknown, pos: number): number {
  const n = numberArg(v, pos);
  if (!Number.isInteger(n)) throw new TypeError(`operand ${pos} must be an integer`);
  return n;
}

export function objectArg(v: unknown, pos: number): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new TypeError(`operand ${pos} must be object but got ${typeName(v)}`);
  return v as Record<string, unknown>;
}

/** A string, or an array/set of strings, as a list. */
export function stringsArg(v: unknown, pos: number): string[] {
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v)) throw new TypeError(`operand ${pos} must be one of {string, array, set} but got ${typeName(v)}`);
  return v.map((x) => {
    if (typeof x !== 'string') throw new TypeError(`operand ${pos} must contain strings only, found ${typeName(x)}`);
    return x;
  });
}

const INT64_MAX = (1n << 63n) - 1n;
const INT64_MIN = -(1n << 63n);

export function checkInt64(n: bigint, what: string): bigint {
  if (n > INT64_MAX || n < INT64_MIN) throw new RangeError(`${what} is outside the range of int64 nanoseconds`);
  return n;
}

const encoder = new TextEncoder();

/**
 * An integer as pre-serialised JSON. The SDK passes an ArrayBuffer result to the WASM as JSON text
 * unchanged, so nanosecond timestamps (beyond 2^53) reach the policy exactly instead of rounded.
 */
export function exactInteger(n: bigint): ArrayBuffer {
  const bytes = encoder.encode(n.toString());
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}
