import { readFileSync } from 'node:fs';
import { z } from 'zod';

/**
 * The launch file of a server image (image contract, src/servers/image-contract.ts): the stdio
 * command that starts the server, written at build time next to the installed package. The
 * operator never reads it; `tollgate bridge --launch-file` does, inside the pod.
 */
const LaunchFile = z.object({
  /** Program and its fixed arguments, e.g. ["node", "/opt/server/node_modules/pkg/dist/index.js"]. */
  command: z.array(z.string().min(1).max(4096)).min(1).max(64),
  /** The source the image was built from, for logs (npx:PKG@VER …). */
  source: z.string().max(300).optional(),
}).strict();

export type LaunchFile = z.infer<typeof LaunchFile>;

export function parseLaunchFile(text: string, where: string): LaunchFile {
  let doc: unknown;
  try { doc = JSON.parse(text); } catch (e) { throw new Error(`${where}: not JSON: ${(e as Error).message}`); }
  const r = LaunchFile.safeParse(doc);
  if (!r.success) throw new Error(`${where}: ${r.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ')}`);
  return r.data;
}

export function readLaunchFile(path: string): LaunchFile {
  let text: string;
  try { text = readFileSync(path, 'utf8'); } catch (e) { throw new Error(`cannot read launch file ${path}: ${(e as Error).message}`); }
  return parseLaunchFile(text, path);
}
