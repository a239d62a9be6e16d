import { readFileSync } from 'node:fs';
import { z } from 'zod';

/**
 * A tool catalogue: what the gateway's servers offer, or a benchmark's tool set. One entry per
 * (server, tool name); the shape of `tools/list` items plus the server that offers them.
 */

const ToolEntrySchema = z.object({
  server: z.string().min(1, 'server must be a non-empty string'),
  name: z.string().min(1, 'name must be a non-empty string'),
  description: z.string().default(''),
  inputSchema: z.record(z.string(), z.unknown()).default({}),
  annotations: z.record(z.string(), z.unknown()).optional(),
});

export type ToolEntry = z.infer<typeof ToolEntrySchema>;

export const CatalogSchema = z.array(ToolEntrySchema);

/** Identity of a tool across servers. */
export function toolKey(t: { server: string; name: string }): string {
  return `${t.server}\u0000${t.name}`;
}

/** Validates a parsed catalogue; errors name the entry and field. */
export function parseCatalog(data: unknown, source = 'catalog'): ToolEntry[] {
  const r = CatalogSchema.safeParse(data);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const [first, ...rest] = issue.path;
    const where = first === undefined ? '' : `[${String(first)}]${rest.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('')}`;
    throw new Error(`${source}${where ? ` entry ${where}` : ''}: ${issue.message} (expected a JSON array of {"server", "name", "description", "inputSchema", "annotations"?})`);
  }
  const seen = new Set<string>();
  for (const [i, t] of r.data.entries()) {
    const k = toolKey(t);
    if (seen.has(k)) throw new Error(`${source} entry [${i}]: tool "${t.name}" of server "${t.server}" appears twice`);
    seen.add(k);
  }
  return r.data;
}

export function loadCatalog(path: string): ToolEntry[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read catalog ${path}: ${(e as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new Error(`catalog ${path} is not JSON: ${(e as Error).message}`);
  }
  return parseCatalog(data, path);
}
