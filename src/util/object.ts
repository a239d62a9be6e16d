/** A JSON-style object: not null, not an array. The one copy of this check (issue #13). */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
