/**
 * JSON Patch (RFC 6902) over JSON Pointers (RFC 6901). The admission webhook answers with these
 * operations; the injector also applies its own operations through applyPatch, so the pod it
 * returns is by construction the pod the API server will build from the patch.
 */

import { isObject } from '../util/object.js';

export type PatchOp =
  | { op: 'add'; path: string; value: unknown }
  | { op: 'remove'; path: string }
  | { op: 'replace'; path: string; value: unknown }
  | { op: 'move'; from: string; path: string }
  | { op: 'copy'; from: string; path: string }
  | { op: 'test'; path: string; value: unknown };

export class JsonPatchError extends Error {
  constructor(readonly index: number, readonly operation: PatchOp, problem: string) {
    super(`patch operation ${index} (${operation.op} ${operation.path}): ${problem}`);
    this.name = 'JsonPatchError';
  }
}

/** One pointer segment: `~` → `~0`, `/` → `~1` (in that order, so `~1` in a key survives). */
export function escapePointerToken(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

export function pointer(...tokens: (string | number)[]): string {
  return tokens.map((t) => '/' + escapePointerToken(String(t))).join('');
}

export function parsePointer(p: string): string[] {
  if (p === '') return [];
  if (!p.startsWith('/')) throw new Error(`JSON pointer "${p}" must be empty or start with "/"`);
  return p.slice(1).split('/').map((t) => {
    if (/~[^01]|~$/.test(t)) throw new Error(`JSON pointer "${p}" has a bad escape in "${t}"`);
    return t.replace(/~1/g, '/').replace(/~0/g, '~');
  });
}

type Container = Record<string, unknown> | unknown[];

function isContainer(v: unknown): v is Container {
  return typeof v === 'object' && v !== null;
}

const INDEX = /^(0|[1-9][0-9]*)$/;

function arrayIndex(arr: unknown[], token: string, forInsert: boolean): number {
  if (forInsert && token === '-') return arr.length;
  if (!INDEX.test(token)) throw new Error(`"${token}" is not an array index`);
  const i = Number(token);
  const max = forInsert ? arr.length : arr.length - 1;
  if (i > max) throw new Error(`index ${i} is out of bounds (array length ${arr.length})`);
  return i;
}

function hasOwn(o: Record<string, unknown>, k: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, k);
}

/** The value a pointer names; throws when it names nothing. */
export function getAt(doc: unknown, tokens: readonly string[]): unknown {
  let cur = doc;
  for (const t of tokens) {
    if (Array.isArray(cur)) cur = cur[arrayIndex(cur, t, false)];
    else if (isObject(cur) && hasOwn(cur, t)) cur = cur[t];
    else throw new Error(`path segment "${t}" does not exist`);
  }
  return cur;
}

function parentOf(doc: unknown, tokens: readonly string[]): { parent: Container; key: string } {
  const parent = getAt(doc, tokens.slice(0, -1));
  if (!isContainer(parent)) throw new Error('parent is not an object or array');
  return { parent, key: tokens[tokens.length - 1] as string };
}

/** Deep equality as RFC 6902 `test` defines it: object member order does not matter. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((v, i) => jsonEqual(v, b[i]));
  if (isObject(a) && isObject(b)) {
    const ak = Object.keys(a);
    const bk = Object.keys(b);
    return ak.length === bk.length && ak.every((k) => hasOwn(b, k) && jsonEqual(a[k], b[k]));
  }
  return false;
}

// The operations below mutate `doc` in place and return the (possibly new) root.

function add(doc: unknown, tokens: string[], value: unknown): unknown {
  if (tokens.length === 0) return value;
  const { parent, key } = parentOf(doc, tokens);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, key, true), 0, value);
  else parent[key] = value;
  return doc;
}

function remove(doc: unknown, tokens: string[]): { doc: unknown; removed: unknown } {
  if (tokens.length === 0) throw new Error('cannot remove the whole document');
  const { parent, key } = parentOf(doc, tokens);
  if (Array.isArray(parent)) {
    const [removed] = parent.splice(arrayIndex(parent, key, false), 1);
    return { doc, removed };
  }
  if (!hasOwn(parent, key)) throw new Error(`member "${key}" does not exist`);
  const removed = parent[key];
  delete parent[key];
  return { doc, removed };
}

function applyOne(doc: unknown, op: PatchOp): unknown {
  const path = parsePointer(op.path);
  switch (op.op) {
    case 'add':
      return add(doc, path, structuredClone(op.value));
    case 'remove':
      return remove(doc, path).doc;
    case 'replace': {
      if (path.length === 0) return structuredClone(op.value);
      getAt(doc, path);
      return add(remove(doc, path).doc, path, structuredClone(op.value));
    }
    case 'move': {
      const from = parsePointer(op.from);
      if (op.path !== op.from && (op.path + '/').startsWith(op.from + '/')) throw new Error('cannot move a value into one of its own children');
      const r = remove(doc, from);
      return add(r.doc, path, r.removed);
    }
    case 'copy':
      return add(doc, path, structuredClone(getAt(doc, parsePointer(op.from))));
    case 'test':
      if (!jsonEqual(getAt(doc, path), op.value)) throw new Error('test failed: value differs');
      return doc;
    default: {
      const never: never = op;
      throw new Error(`unknown op "${(never as { op: string }).op}"`);
    }
  }
}

/**
 * Applies the operations in order to a copy of `doc`; the input is never modified. Atomic as the
 * RFC asks: any failing operation throws JsonPatchError and no partial result escapes.
 */
export function applyPatch<T>(doc: T, ops: readonly PatchOp[]): T {
  let cur: unknown = structuredClone(doc);
  ops.forEach((op, i) => {
    try {
      cur = applyOne(cur, op);
    } catch (e) {
      throw new JsonPatchError(i, op, (e as Error).message);
    }
  });
  return cur as T;
}

const OPS = new Set(['add', 'remove', 'replace', 'move', 'copy', 'test']);

/** Checks untrusted input (a patch read from JSON) has the RFC 6902 shape; throws naming the first bad entry. */
export function parsePatch(v: unknown): PatchOp[] {
  if (!Array.isArray(v)) throw new Error('a JSON Patch must be an array of operations');
  return v.map((e, i) => {
    if (!isObject(e)) throw new Error(`operation ${i} is not an object`);
    const { op, path, from } = e;
    if (typeof op !== 'string' || !OPS.has(op)) throw new Error(`operation ${i}: "op" must be one of ${[...OPS].join(', ')}`);
    if (typeof path !== 'string') throw new Error(`operation ${i}: "path" must be a string`);
    if ((op === 'move' || op === 'copy') && typeof from !== 'string') throw new Error(`operation ${i}: "from" must be a string`);
    if ((op === 'add' || op === 'replace' || op === 'test') && !hasOwn(e, 'value')) throw new Error(`operation ${i}: "value" is missing`);
    return e as PatchOp;
  });
}
