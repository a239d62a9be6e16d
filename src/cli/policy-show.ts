import { listRevisions, readRevision, RevisionNotFoundError } from '../controlplane/revision-archive.js';
import { printable } from '../decisionlog/format.js';
import { stateDirOf } from '../mesh/mesh-file.js';
import { parseCommandArgs } from './args.js';
import { UsageError } from './types.js';

/** `tollgate policy show`: what a published revision contained (the control plane archives each). */

export const SHOW_HELP = `Usage: tollgate policy show [--revision N] [--file PATH] [--state DIR]

Shows what a policy revision contained. Every decision record names the revision it was judged
under; the control plane keeps the sources of each revision it publishes, with the revision's
content hash, in <state>/revisions/N/ (the last 200).

  (no flags)       list the archived revisions: number, published at, content hash, files
  --revision N     revision N: its content hash, bundle hash, signing key, files with their
                   SHA-256, then each source file in full
  --file PATH      with --revision: only this file (e.g. authz.rego)
  --state DIR      the mesh's state directory (default $TOLLGATE_STATE_DIR, else ./.state)
  -h, --help       this text

Exit status: 0 shown, 1 no such revision or nothing archived, 2 bad usage.
`;

export interface ShowIo { out: (s: string) => void; err: (s: string) => void }

export async function showRevision(argv: string[], io: ShowIo, env: Readonly<Record<string, string | undefined>> = process.env): Promise<number> {
  const { values: v } = parseCommandArgs(argv, { revision: { type: 'string' }, file: { type: 'string' }, state: { type: 'string' } });
  if (v.help) { io.out(SHOW_HELP); return 0; }
  const { dir } = stateDirOf(v.state, env);
  if (v.revision === undefined) {
    if (v.file !== undefined) throw new UsageError('--file goes with --revision N');
    const all = listRevisions(dir);
    if (!all.length) {
      io.err(`tollgate policy show: no revision archived in ${dir}/revisions: the control plane of tollgate up writes one per publish (is --state the mesh's state directory?)\n`);
      return 1;
    }
    io.out('REVISION  PUBLISHED                 CONTENT        FILES\n');
    for (const n of all) {
      const { index } = readRevision(dir, n);
      io.out(`${String(n).padEnd(8)}  ${index.published_at.padEnd(24)}  ${index.content_sha256.slice(0, 12)}   ${index.files.length}\n`);
    }
    return 0;
  }
  const n = Number(v.revision);
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`--revision must be a revision number ≥ 1, got "${v.revision}"`);
  let rev;
  try {
    rev = readRevision(dir, n);
  } catch (e) {
    if (!(e instanceof RevisionNotFoundError)) throw e;
    io.err(`tollgate policy show: ${e.message}\n`);
    return 1;
  }
  const { index, source } = rev;
  const files = v.file === undefined ? index.files : index.files.filter((f) => f.path === v.file!.replace(/^\/+/, ''));
  if (v.file !== undefined && !files.length) {
    io.err(`tollgate policy show: revision ${n} has no file ${v.file} (it has ${index.files.map((f) => f.path).join(', ')})\n`);
    return 1;
  }
  if (v.file === undefined) {
    io.out(`revision ${index.revision}  published ${index.published_at}  signed by ${index.kid}\n`);
    io.out(`content sha256 ${index.content_sha256}\nbundle  sha256 ${index.bundle_sha256}\n\n`);
    for (const f of index.files) io.out(`  ${f.sha256.slice(0, 12)}  ${String(f.size).padStart(7)}  ${printable(f.path)}\n`);
  }
  for (const f of files) {
    if (v.file === undefined) io.out(`\n--- ${printable(f.path)} (sha256 ${f.sha256})\n`);
    const text = source(f.path).toString('utf8');
    io.out(text.endsWith('\n') ? text : `${text}\n`);
  }
  return 0;
}
