import { z } from 'zod';
import type { FieldDoc } from './doc-table.js';

/**
 * The helpers every config schema (authz, budgets, decision log, identity) is built with, so that
 * all of them refuse unknown keys and report problems in one wording:
 * `<field path>: unknown field (known: a, b, c)` and `<field path>: must be …, got …`.
 */

/** A field's documentation for the generated tables (`.meta(fieldDoc(...))`). */
export const fieldDoc = (dflt: string, text: string): FieldDoc => ({ default: dflt, doc: text });

/** A value as an error message shows what was given: `"week"`, `42`, `a list`, `nothing`. */
export function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (typeof v === 'string') return `"${v}"`;
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return String(v);
}

/**
 * A config mapping with exactly these fields: a typo must not pass silently, so an unknown one is
 * refused with the list of known ones; `expected` is what to say when the value is no mapping
 * (followed by what was given).
 */
export function strictMapping<S extends Record<string, z.ZodType>>(shape: S, expected = 'must be a mapping') {
  const known = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (iss) => (iss.code === 'unrecognized_keys' ? `unknown field (known: ${known})` : `${expected}, got ${describeValue(iss.input)}`),
  });
}

/** `budgets[1].window`: a field path as the docs write it (list positions in brackets); '' at the top. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const k of path) out += typeof k === 'number' ? `[${k}]` : `${out ? '.' : ''}${String(k)}`;
  return out;
}

/**
 * The first zod issue as [field path, problem]; an unknown key is named itself, not by its parent.
 * `at`: where the checked value sits in a larger document (its path is prefixed).
 */
export function firstProblem(error: z.ZodError, at: readonly PropertyKey[] = []): [string, string] {
  const i = error.issues[0]!;
  const path = i.code === 'unrecognized_keys' ? [...i.path, i.keys[0]!] : i.path;
  return [fieldPath([...at, ...path]), i.message];
}
