/**
 * RFC 8785 JSON Canonicalization Scheme (JCS): the byte-exact encoding the hash chain is computed
 * over, so that any verifier, in any language, gets the same hash for the same record.
 *
 * - object members sorted by the UTF-16 code units of their names (what `Array#sort` does with
 *   no comparator), no whitespace;
 * - numbers as ECMAScript's Number-to-String (what `JSON.stringify` emits for finite numbers,
 *   including `-0` → `0`); NaN and ±Infinity have no JSON form and are rejected;
 * - strings escaped as `JSON.stringify` does (short escapes, `\u00xx` lowercase for other
 *   controls, everything else literal).
 *
 * Beyond I-JSON, lone surrogates are accepted and written as `\udxxx` escapes (well-formed
 * `JSON.stringify`): a client can send them inside tool arguments, and refusing to log such a
 * call would let a client turn logging into a denial of service. The output stays deterministic.
 *
 * Like `JSON.stringify`, `toJSON()` is honoured and object members whose value is undefined, a
 * function or a symbol are omitted (so `canonicalize(JSON.parse(canonicalize(x)))` is stable).
 */

export class CanonicalJsonError extends Error {
  /** Keys from the root to the offending value, filled in while the error unwinds. */
  readonly trail: Array<string | number> = [];
  constructor(readonly problem: string) {
    super(problem);
    this.name = 'CanonicalJsonError';
  }
  get path(): string {
    return this.trail.map((k) => '/' + String(k).replace(/~/g, '~0').replace(/\//g, '~1')).join('');
  }
}

/** Canonical JSON text of a JSON-compatible value. Throws CanonicalJsonError otherwise. */
export function canonicalize(value: unknown): string {
  let out: string | undefined;
  try {
    out = write(value, '');
  } catch (e) {
    if (e instanceof CanonicalJsonError) e.message = `${e.problem} at ${e.path || '(root)'}: decision records must be plain JSON`;
    throw e;
  }
  if (out === undefined) throw new CanonicalJsonError(`a top-level ${typeof value} has no JSON form`);
  return out;
}

/** JSON.stringify for a string, skipped for the common case of nothing to escape. */
function str(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return JSON.stringify(s);
  }
  return '"' + s + '"';
}

/**
 * `"name":` for a member name. Records repeat the same few dozen names (the schema's, header
 * names), so the escaped form is kept; only short names are kept, and the map is emptied when
 * full, as argument names are the caller's and unbounded.
 */
const memberPrefixes = new Map<string, string>();
function member(k: string): string {
  let p = memberPrefixes.get(k);
  if (p === undefined) {
    p = str(k) + ':';
    if (k.length > 64) return p;
    if (memberPrefixes.size >= 2048) memberPrefixes.clear();
    memberPrefixes.set(k, p);
  }
  return p;
}

/**
 * Sorts by UTF-16 code units (`<` on strings compares code units). Insertion sort: objects have
 * few keys, and this is several times faster than Array#sort's generic comparator on them.
 */
function sortKeys(a: string[]): string[] {
  for (let i = 1; i < a.length; i++) {
    const x = a[i]!;
    let j = i - 1;
    while (j >= 0 && a[j]! > x) {
      a[j + 1] = a[j]!;
      j--;
    }
    a[j + 1] = x;
  }
  return a;
}

function write(v: unknown, key: string): string | undefined {
  if (v !== null && typeof v === 'object' && typeof (v as { toJSON?: unknown }).toJSON === 'function') {
    v = (v as { toJSON(k: string): unknown }).toJSON(key);
  }
  switch (typeof v) {
    case 'string':
      return str(v);
    case 'number':
      if (!Number.isFinite(v)) throw new CanonicalJsonError(`${v} is not a JSON number`);
      // ECMAScript Number::toString is exactly RFC 8785's number form (String(-0) is "0").
      return String(v);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
    case 'bigint':
      throw new CanonicalJsonError('a bigint has no JSON form (convert it to a number or string)');
    default:
      break;
  }
  if (v === null) return 'null';
  if (Array.isArray(v)) return writeArray(v);
  return writeObject(v as Record<string, unknown>);
}

function writeArray(arr: unknown[]): string {
  let s = '[';
  let i = 0;
  try {
    for (; i < arr.length; i++) {
      const item = write(arr[i], String(i));
      if (i > 0) s += ',';
      s += item === undefined ? 'null' : item;
    }
  } catch (e) {
    if (e instanceof CanonicalJsonError) e.trail.unshift(i);
    throw e;
  }
  return s + ']';
}

/**
 * Canonical JSON of `{...obj, ...extra}` without building the merged object (the hot path adds
 * seq and prev_hash to each record; a spread copy of a large object is slower to walk).
 */
export function canonicalizeWith(obj: Record<string, unknown>, extra: Record<string, unknown>): string {
  try {
    return writeObject(obj, extra);
  } catch (e) {
    if (e instanceof CanonicalJsonError) e.message = `${e.problem} at ${e.path || '(root)'}: decision records must be plain JSON`;
    throw e;
  }
}

function writeObject(obj: Record<string, unknown>, extra?: Record<string, unknown>): string {
  let keys = Object.keys(obj);
  if (extra) {
    const more = Object.keys(extra);
    keys = keys.filter((k) => !Object.prototype.hasOwnProperty.call(extra, k)).concat(more);
  }
  if (keys.length > 1) {
    if (keys.length > 64) keys.sort();
    else sortKeys(keys);
  }
  let s = '{';
  let first = true;
  let k = '';
  try {
    for (let i = 0; i < keys.length; i++) {
      k = keys[i]!;
      const item = write(extra && Object.prototype.hasOwnProperty.call(extra, k) ? extra[k] : obj[k], k);
      if (item === undefined) continue;
      if (first) first = false;
      else s += ',';
      s += member(k) + item;
    }
  } catch (e) {
    if (e instanceof CanonicalJsonError) e.trail.unshift(k);
    throw e;
  }
  return s + '}';
}
