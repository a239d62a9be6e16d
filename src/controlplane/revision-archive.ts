import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { z } from 'zod';
import type { BundleFiles } from '../bundle/archive.js';
import type { BundlePointer } from '../bundle/pointer.js';

/**
 * <state>/revisions/<N>/: the sources of each policy revision the control plane published, with
 * its content hash, so a reviewer can see what revision N (named in every decision record)
 * contained: `tollgate policy show --revision N`. The compiled WASM is left out (it is the
 * bundle in NATS); what a person reads is the Rego and data.
 */

export const REVISIONS_DIR = 'revisions';
const INDEX = 'revision.json';
/** Revisions kept; older ones are removed (the NATS object store keeps its own window). */
export const KEEP_REVISIONS = 200;

const indexSchema = z.object({
  revision: z.number().int(),
  content_sha256: z.string(),
  bundle_sha256: z.string(),
  published_at: z.string(),
  kid: z.string(),
  files: z.array(z.object({ path: z.string(), sha256: z.string(), size: z.number().int() })),
});
export type RevisionIndex = z.infer<typeof indexSchema>;

/**
 * The policy sources as the author wrote them (OPA rewrites the modules it puts in a bundle):
 * the files a build reads, *.rego without tests and data.json / data.yaml, keyed "/rel/path".
 */
export async function readPolicySources(dir: string): Promise<BundleFiles> {
  const out: BundleFiles = new Map();
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const isSource = (e.name.endsWith('.rego') && !e.name.endsWith('_test.rego')) || e.name === 'data.json' || e.name === 'data.yaml';
    if (!isSource) continue;
    const full = join(e.parentPath, e.name);
    out.set(`/${relative(dir, full).split(sep).join('/')}`, await readFile(full));
  }
  return out;
}

/** Bundle paths that are sources a person reads; no "..", no absolute escape, no WASM. */
export function archivablePath(path: string): string | null {
  const rel = path.replace(/^\/+/, '');
  if (!rel || rel.endsWith('.wasm') || rel === '.manifest') return null;
  if (rel.split('/').some((s) => s === '' || s === '.' || s === '..')) return null;
  return rel;
}

export function archiveRevision(stateDir: string, pointer: BundlePointer, files: BundleFiles, keep = KEEP_REVISIONS): string {
  const root = join(stateDir, REVISIONS_DIR);
  const dir = join(root, String(pointer.revision));
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  const listed: RevisionIndex['files'] = [];
  for (const [path, bytes] of [...files].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const rel = archivablePath(path);
    if (rel === null) continue;
    const out = join(tmp, 'files', rel);
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, bytes);
    listed.push({ path: rel, sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length });
  }
  mkdirSync(tmp, { recursive: true });
  const index: RevisionIndex = {
    revision: pointer.revision, content_sha256: pointer.content_sha256, bundle_sha256: pointer.sha256,
    published_at: pointer.published_at, kid: pointer.kid, files: listed,
  };
  writeFileSync(join(tmp, INDEX), JSON.stringify(index, null, 2) + '\n');
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  for (const old of listRevisions(stateDir).slice(0, -keep)) rmSync(join(root, String(old)), { recursive: true, force: true });
  return dir;
}

/** Archived revision numbers, oldest first. */
export function listRevisions(stateDir: string): number[] {
  const root = join(stateDir, REVISIONS_DIR);
  if (!existsSync(root)) return [];
  return readdirSync(root).filter((n) => /^\d+$/.test(n)).map(Number).sort((a, b) => a - b);
}

export class RevisionNotFoundError extends Error {}

/** An archived revision that is there but cannot be used: unreadable, malformed, or altered. */
export class RevisionReadError extends Error {}

/** A zod issue path as a JSON path: files[0].path. */
function jsonPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `${out ? '.' : ''}${String(p)}`;
  return out || '(top level)';
}

function readIndex(file: string): RevisionIndex {
  let text: string;
  try { text = readFileSync(file, 'utf8'); } catch (e) { throw new RevisionReadError(`${file}: cannot read it (${(e as Error).message})`); }
  let doc: unknown;
  try { doc = JSON.parse(text); } catch (e) { throw new RevisionReadError(`${file}: not JSON (${(e as Error).message})`); }
  const r = indexSchema.safeParse(doc);
  if (!r.success) {
    const problems = r.error.issues.map((i) => `${jsonPath(i.path)}: ${i.code === 'invalid_type' && /received undefined$/.test(i.message) ? `missing (${i.expected} expected)` : i.message}`);
    throw new RevisionReadError(`${file}: not a revision index: ${problems.join('; ')}`);
  }
  return r.data;
}

/**
 * Revision N as archived. Its index is checked as it is read; `source` reads one listed file only
 * from inside the revision's files/ directory (a path that leads elsewhere, e.g. "../../etc/x", is
 * refused, symbolic links included) and only if its content still has the SHA-256 the index
 * recorded. Both throw RevisionReadError naming the file and the problem.
 */
export function readRevision(stateDir: string, revision: number): { index: RevisionIndex; source: (path: string) => Buffer } {
  const dir = join(stateDir, REVISIONS_DIR, String(revision));
  if (!existsSync(join(dir, INDEX))) {
    const have = listRevisions(stateDir);
    throw new RevisionNotFoundError(`revision ${revision} is not in ${join(stateDir, REVISIONS_DIR)}${have.length ? ` (it has ${have[0]}…${have.at(-1)})` : ' (no revision archived yet: the control plane of tollgate up writes one per publish)'}`);
  }
  const indexFile = join(dir, INDEX);
  const index = readIndex(indexFile);
  const source = (path: string): Buffer => {
    const listed = index.files.find((f) => f.path === path);
    const shown = JSON.stringify(path);
    if (!listed) throw new RevisionReadError(`${indexFile} lists no file ${shown}`);
    const files = resolve(dir, 'files');
    const full = resolve(files, path);
    const inside = (root: string, p: string): boolean => { const r = relative(root, p); return r !== '' && !r.startsWith('..') && !isAbsolute(r); };
    if (archivablePath(path) === null || !inside(files, full)) throw new RevisionReadError(`${indexFile}: file ${shown} is outside the revision's files/ directory; refusing to read it`);
    let bytes: Buffer;
    try {
      const real = realpathSync(full);
      if (!inside(realpathSync(files), real)) throw new RevisionReadError(`${full} leads outside the revision's files/ directory (a symbolic link); refusing to read it`);
      bytes = readFileSync(real);
    } catch (e) {
      if (e instanceof RevisionReadError) throw e;
      throw new RevisionReadError(`${full}: cannot read it (${(e as Error).message})`);
    }
    const sha = createHash('sha256').update(bytes).digest('hex');
    if (sha !== listed.sha256) throw new RevisionReadError(`${full}: content has sha256 ${sha}, ${indexFile} recorded ${listed.sha256}: the archived file was altered; refusing to show it`);
    return bytes;
  };
  return { index, source };
}
