import { z } from 'zod';
import type { FieldDoc } from './doc-table.js';

/** A field's documentation for the generated tables (`.meta(fieldDoc(...))`). */
export const fieldDoc = (dflt: string, text: string): FieldDoc => ({ default: dflt, doc: text });

/**
 * A config mapping with exactly these fields: a typo must not pass silently, so an unknown one is
 * refused with the list of known ones; `expected` is what to say when the value is no mapping.
 */
export function strictMapping<S extends Record<string, z.ZodType>>(shape: S, expected = 'must be a mapping') {
  const known = Object.keys(shape).join(', ');
  return z.strictObject(shape, { error: (iss) => (iss.code === 'unrecognized_keys' ? `unknown field (known: ${known})` : expected) });
}

/** The first zod issue as [field path, problem]; an unknown key is named itself, not by its parent. */
export function firstProblem(error: z.ZodError): [string, string] {
  const i = error.issues[0]!;
  const path = i.code === 'unrecognized_keys' ? [...i.path, i.keys[0]!] : i.path;
  return [path.map(String).join('.'), i.message];
}
