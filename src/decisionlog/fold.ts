import type { PolicyInput } from '../contract/policy.js';
import { isObject } from '../util/object.js';
import { formatPointer, parsePointer, type PointerTokens } from './pointer.js';

/**
 * Folding: the policy input carries the same values more than once (the tool arguments as
 * input.mcp.arguments, input.mcp.params.arguments and inside input.parsed_body; the headers as
 * input.request.headers and input.attributes.request.http.headers). Canonicalising and hashing
 * every copy was a large part of what the decision log cost (issue 12), so a record keeps one
 * copy and lists each left-out copy in `folded` as `{path, from}`: "the value at `path` was equal
 * to the value at `from` and is not written". Folding happens after masking, and only when the
 * two values are deep-equal, so `unfoldRecord` gives back exactly the masked input authz had.
 *
 * The chain hashes the record as written (folded), so verification needs nothing from here.
 */

export interface Fold {
  /** JSON pointer (rooted at the record) of the copy left out. */
  path: string;
  /** JSON pointer of the value it equalled, which the record holds. */
  from: string;
}

/**
 * The copies authz folds, in the order they are restored: mcp.params.arguments first, because
 * parsed_body.params is restored from the whole of mcp.params.
 */
const FOLDS: ReadonlyArray<{ path: PointerTokens; from: PointerTokens; pointer: Fold }> = [
  { path: ['mcp', 'params', 'arguments'], from: ['mcp', 'arguments'] },
  { path: ['parsed_body', 'params'], from: ['mcp', 'params'] },
  { path: ['attributes', 'request', 'http', 'headers'], from: ['request', 'headers'] },
].map((f) => ({ ...f, pointer: Object.freeze({ path: formatPointer(['input', ...f.path]), from: formatPointer(['input', ...f.from]) }) }));

function get(root: unknown, tokens: PointerTokens): unknown {
  let cur = root;
  for (const t of tokens) {
    if (!isObject(cur) || !Object.prototype.hasOwnProperty.call(cur, t)) return undefined;
    cur = cur[t];
  }
  return cur;
}

/**
 * Request bodies below this size are written with every copy. Measured at saturation
 * (docs/performance.md, 2026-12-06): with the benchmark's bodies (100-300 bytes) folding cost
 * ~0.9% of authz CPU and saved ~0.4% in canonical JSON and hashing; with 100 KB of arguments it
 * makes the record 3x smaller and chaining it 3x cheaper. The break-even lies between; 4 KiB
 * keeps every call that carries kilobytes of arguments folded.
 */
export const FOLD_MIN_BODY_BYTES = 4096;

/** Structural equality of JSON values; the same object (the common case, nothing masked) is cheap. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  let n = 0;
  for (const k in ao) {
    if (ao[k] === undefined) continue;
    n++;
    if (!Object.prototype.hasOwnProperty.call(bo, k) || !jsonEqual(ao[k], bo[k])) return false;
  }
  let m = 0;
  for (const k in bo) if (bo[k] !== undefined) m++;
  return n === m;
}

/** A copy of `o` without member `key`, built without `delete` (which would leave a slow dictionary-mode object). */
function copyWithout(o: Record<string, unknown>, key: string): Record<string, unknown> {
  const copy: Record<string, unknown> = {};
  for (const k of Object.keys(o)) if (k !== key) copy[k] = o[k];
  return copy;
}

/**
 * The masked input with its duplicate copies left out, and the list of what was left out. Does
 * not mutate `input` (the request path still holds parts of it): the containers on the way to a
 * left-out copy are copied once each, everything else is shared.
 */
export function foldInput(input: PolicyInput, minBodyBytes = 0): { input: PolicyInput; folded: Fold[] } {
  // Folding a small call costs more than writing its copies (see FOLD_MIN_BODY_BYTES).
  const size = get(input, ['attributes', 'request', 'http', 'size']);
  if (minBodyBytes > 0 && typeof size === 'number' && size < minBodyBytes) return { input, folded: [] };
  // Decide every fold on the whole input first: later folds compare values earlier ones remove.
  const chosen = FOLDS.filter((f) => {
    const from = get(input, f.from);
    return isObject(from) && jsonEqual(get(input, f.path), from);
  });
  if (chosen.length === 0) return { input, folded: [] };
  // Copies made so far, by the original container they replace; a container shared by two
  // paths gets one copy, so the result keeps the input's sharing.
  const copies = new Map<object, Record<string, unknown>>();
  const root = { ...(input as unknown as Record<string, unknown>) };
  copies.set(input, root);
  for (const f of chosen) {
    // Every fold path is at least two deep and, being chosen, runs through objects only.
    let parent = root;
    for (let i = 0; i < f.path.length - 1; i++) {
      const t = f.path[i]!;
      const child = parent[t] as Record<string, unknown>;
      let copy = copies.get(child);
      if (copy === undefined) {
        copy = i === f.path.length - 2 ? copyWithout(child, f.path[i + 1]!) : { ...child };
        copies.set(child, copy);
      } else if (i === f.path.length - 2) {
        delete copy[f.path[i + 1]!];
      }
      parent[t] = copy;
      parent = copy;
    }
  }
  return {
    input: root as unknown as PolicyInput,
    folded: chosen.map((f) => f.pointer),
  };
}

/** Sets `value` at `tokens` below `root`, copying the containers on the way (missing ones are created). */
function withValue(root: Record<string, unknown>, tokens: PointerTokens, value: unknown): Record<string, unknown> {
  const copy = { ...root };
  const [head, ...rest] = tokens;
  if (rest.length === 0) copy[head!] = value;
  else copy[head!] = withValue(isObject(copy[head!]) ? copy[head!] as Record<string, unknown> : {}, rest, value);
  return copy;
}

/** Reads a record's `folded` list; throws on anything that is not a list of pointer pairs into the input. */
export function parseFolds(raw: unknown): Array<{ path: PointerTokens; from: PointerTokens }> {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) throw new Error('"folded" is not a list');
  return raw.map((f, i) => {
    if (!isObject(f) || typeof f.path !== 'string' || typeof f.from !== 'string') throw new Error(`"folded"[${i}] is not {path, from}`);
    const path = parsePointer(f.path);
    const from = parsePointer(f.from);
    if (path[0] !== 'input' || path.length < 2 || from[0] !== 'input' || from.length < 2) {
      throw new Error(`"folded"[${i}] (${f.path} from ${f.from}) does not point into the input`);
    }
    return { path, from };
  });
}

/**
 * A record with its input as authz had it after masking (every folded copy put back), for readers
 * that evaluate or show the input (replay, review, SIEM export). Records without `folded` are
 * returned as they are. The result shares values with `record`; do not mutate it. Throws with a
 * clear message when a fold names a value the record does not hold.
 */
export function unfoldRecord<R extends { input?: unknown; folded?: unknown }>(record: R): R {
  const folds = parseFolds(record.folded);
  if (folds.length === 0 || !isObject(record.input)) return record;
  let doc: Record<string, unknown> = { input: record.input };
  for (const f of folds) {
    const value = get(doc, f.from);
    if (value === undefined) throw new Error(`folded copy ${formatPointer(f.path)} refers to ${formatPointer(f.from)}, which the record does not hold`);
    doc = withValue(doc, f.path, value);
  }
  const { folded: _folded, ...rest } = record;
  return { ...rest, input: doc.input } as unknown as R;
}
