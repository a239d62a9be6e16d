import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';

/**
 * <state>/mesh.json: where the mesh `tollgate up` runs can be reached. `up` writes it once every
 * part is ready and removes it on stop, so every other command (token, status, budget, logs,
 * policy) finds the running mesh from its state directory alone, whatever ports it was given.
 */

export const MESH_FILE = 'mesh.json';
export const MESH_SCHEMA = 'tollgate.mesh/v1';
export const DEFAULT_STATE_DIR = '.state';

const tlsCreds = z.object({ ca: z.string(), cert: z.string(), key: z.string() });

export const meshFileSchema = z.object({
  schema: z.literal(MESH_SCHEMA),
  pid: z.number().int(),
  startedAt: z.string(),
  stateDir: z.string(),
  policies: z.string(),
  budgets: z.string().nullable(),
  /** The audience tokens must carry: the governed MCP endpoint's URL. */
  audience: z.string(),
  endpoints: z.object({
    mcp: z.string(),
    issuer: z.string(),
    authz: z.string(),
    /** authz's admin listener: /metrics, /readyz, /status. */
    authzAdmin: z.string(),
    envoyAdmin: z.string(),
    xds: z.string().nullable(),
    nats: z.string().nullable(),
    /** The control plane's admin listener: /metrics, /status. */
    controlPlaneAdmin: z.string().nullable(),
  }),
  decisions: z.string(),
  /** NATS client credentials by role (reviewer: read-only; operator: budget changes). */
  natsCredentials: z.record(z.string(), tlsCreds),
});

export type MeshFile = z.infer<typeof meshFileSchema>;

export class MeshFileError extends Error {}

/** The state directory a command uses: its --state flag, else $TOLLGATE_STATE_DIR, else ./.state. */
export function stateDirOf(flag: string | undefined, env: Readonly<Record<string, string | undefined>>): { dir: string; explicit: boolean } {
  if (flag !== undefined && flag !== '') return { dir: resolve(flag), explicit: true };
  if (env.TOLLGATE_STATE_DIR) return { dir: resolve(env.TOLLGATE_STATE_DIR), explicit: true };
  return { dir: resolve(DEFAULT_STATE_DIR), explicit: false };
}

export function meshFilePath(stateDir: string): string {
  return join(stateDir, MESH_FILE);
}

/** Written atomically (rename), readable by the user only: it names credential files. */
export function writeMeshFile(doc: MeshFile): string {
  const file = meshFilePath(doc.stateDir);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(meshFileSchema.parse(doc), null, 2) + '\n', { mode: 0o600 });
  renameSync(tmp, file);
  return file;
}

export function removeMeshFile(stateDir: string, pid = process.pid): void {
  const found = readMeshFile(stateDir);
  // Only our own: a second `up` on the same state dir must not lose the first one's file.
  if (found && found.pid === pid) rmSync(meshFilePath(stateDir), { force: true });
}

/** The mesh file of a state dir, or null when there is none; a corrupt one is an error that says so. */
export function readMeshFile(stateDir: string): MeshFile | null {
  const file = meshFilePath(stateDir);
  if (!existsSync(file)) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new MeshFileError(`${file} is not JSON (${(e as Error).message}): delete it and restart tollgate up`);
  }
  const parsed = meshFileSchema.safeParse(raw);
  if (!parsed.success) throw new MeshFileError(`${file} is not a ${MESH_SCHEMA} file (${parsed.error.issues[0]?.message ?? 'bad shape'}): delete it and restart tollgate up`);
  return parsed.data;
}

/** Whether the `up` that wrote the file still runs (a stale file is left by kill -9). */
export function meshRunning(doc: MeshFile): boolean {
  try {
    process.kill(doc.pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The mesh a command should talk to, from --state / $TOLLGATE_STATE_DIR / ./.state; null if none runs there. */
export function findMesh(stateFlag: string | undefined, env: Readonly<Record<string, string | undefined>>): { stateDir: string; explicit: boolean; mesh: MeshFile | null } {
  const { dir, explicit } = stateDirOf(stateFlag, env);
  return { stateDir: dir, explicit, mesh: readMeshFile(dir) };
}

/** "no mesh in DIR" with what to do, for commands that need one and have no flag to go without. */
export function noMeshHint(stateDir: string, explicit: boolean): string {
  return `no running mesh found: ${meshFilePath(stateDir)} does not exist. Start one with \`tollgate up\`${explicit ? ` --state ${stateDir}` : ''}, ` +
    'or point at the state directory of a running one with --state DIR or TOLLGATE_STATE_DIR';
}
