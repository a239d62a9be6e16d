/**
 * Filtering of MCP list results (tools/list, prompts/list, resources/list,
 * resources/templates/list): a caller sees only what policy lets it use. Pure: the result keeps
 * every other member (`nextCursor`, `_meta`, ...) as it was, so pagination still works; a page
 * may come back shorter or empty, with its cursor, which clients handle by asking for the next.
 */

export type ListKind = 'tools' | 'prompts' | 'resources' | 'resourceTemplates';

/** The JSON-RPC method of each list, and the member of its result that holds the items. */
export const LIST_METHODS: Readonly<Record<string, ListKind>> = {
  'tools/list': 'tools',
  'prompts/list': 'prompts',
  'resources/list': 'resources',
  'resources/templates/list': 'resourceTemplates',
};

export const LIST_KINDS: readonly ListKind[] = ['tools', 'prompts', 'resources', 'resourceTemplates'];

export type JsonObject = Record<string, unknown>;

export const isJsonObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

export function listKindOfMethod(method: string | null | undefined): ListKind | null {
  return method ? LIST_METHODS[method] ?? null : null;
}

/**
 * Which list a result is, judged by its shape: for responses whose request method is not known
 * (inside a batch). A tools/call result never has these members at its top level.
 */
export function listKindOfResult(result: unknown): ListKind | null {
  if (!isJsonObject(result) || 'content' in result) return null;
  const kinds = LIST_KINDS.filter((k) => Array.isArray(result[k]));
  return kinds.length === 1 ? kinds[0]! : null;
}

export interface FilteredList<T> {
  result: T;
  /** How many items the predicate removed. */
  removed: number;
}

/** A copy of a list result holding only the items `keep` accepts; the input is not modified. */
export function filterListResult(result: JsonObject, kind: ListKind, keep: (item: JsonObject) => boolean): FilteredList<JsonObject> {
  const items = result[kind];
  if (!Array.isArray(items)) return { result, removed: 0 };
  // An item that is not an object cannot be judged: it is dropped, like any item not allowed.
  const kept = items.filter((item: unknown) => isJsonObject(item) && keep(item));
  if (kept.length === items.length) return { result, removed: 0 };
  return { result: { ...result, [kind]: kept }, removed: items.length - kept.length };
}

/**
 * Filters a JSON-RPC response message carrying a list result. Errors, and messages that are not
 * responses, come back as they are.
 */
export function filterListResponse(message: unknown, kind: ListKind, keep: (item: JsonObject) => boolean): FilteredList<unknown> {
  if (!isJsonObject(message) || !isJsonObject(message.result)) return { result: message, removed: 0 };
  const f = filterListResult(message.result, kind, keep);
  if (f.removed === 0) return { result: message, removed: 0 };
  return { result: { ...message, result: f.result }, removed: f.removed };
}
