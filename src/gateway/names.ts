/**
 * Tool names across servers: `<server>__<tool>`. Server names are DNS labels (no `_`), so the
 * first `__` always ends the server name and no two (server, tool) pairs share a qualified name.
 */

export const SERVER_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const SEP = '__';

export function qualify(server: string, tool: string): string {
  return `${server}${SEP}${tool}`;
}

export function splitQualified(name: string): { server: string; tool: string } | null {
  const i = name.indexOf(SEP);
  if (i <= 0 || i + SEP.length >= name.length) return null;
  const server = name.slice(0, i);
  if (!SERVER_NAME.test(server)) return null;
  return { server, tool: name.slice(i + SEP.length) };
}
