/**
 * JSON Pointers (RFC 6901) as OPA's masking rules use them, plus the dotted form policies tend to
 * write in a decision's `mask` list (`input.mcp.arguments.password`).
 */

export type PointerTokens = string[];

/** "/input/a~1b/0" → ["input", "a/b", "0"]. Throws on text that is not a pointer. */
export function parsePointer(p: string): PointerTokens {
  if (p === '') return [];
  if (!p.startsWith('/')) throw new Error(`"${p}" is not a JSON pointer (it must start with "/")`);
  return p.slice(1).split('/').map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

export function formatPointer(tokens: readonly (string | number)[]): string {
  let s = '';
  for (const t of tokens) {
    const text = String(t);
    s += '/' + (text.includes('~') || text.includes('/') ? text.replace(/~/g, '~0').replace(/\//g, '~1') : text);
  }
  return s;
}

/**
 * A decision's mask entry to pointer tokens rooted at the event: "/input/mcp/arguments/x",
 * "input.mcp.arguments.x" and "mcp.arguments.x" (relative to input) all name the same field.
 * Dotted names cannot contain dots themselves; use the pointer form for such keys.
 */
export function maskPathTokens(path: string): PointerTokens {
  if (path.startsWith('/')) return parsePointer(path);
  const parts = path.split('.').filter((s) => s.length > 0);
  if (parts[0] === 'input' || parts[0] === 'result') return parts;
  return ['input', ...parts];
}
