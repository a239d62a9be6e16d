import { listRevisions, readRevision, RevisionNotFoundError, RevisionReadError } from '../controlplane/revision-archive.js';
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

An archived revision whose revision.json is unreadable or malformed is reported (the file and the
problem) and the others are still listed; a source file that leads outside its revision's
directory or no longer has the SHA-256 recorded for it is refused.

Exit status: 0 shown, 1 no such revision, nothing archived, or something archived is unreadable,
malformed or altered (the rest is still shown), 2 bad usage.
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
    // Read them all first: one unreadable revision is reported, and does not hide the others.
    const rows: string[] = [];
    const bad: string[] = [];
    for (const n of all) {
      try {
        const { index } = readRevision(dir, n);
        rows.push(`${String(n).padEnd(8)}  ${printable(index.published_at).padEnd(24)}  ${printable(index.content_sha256.slice(0, 12))}   ${index.files.length}\n`);
      } catch (e) {
        if (!(e instanceof RevisionReadError || e instanceof RevisionNotFoundError)) throw e;
        bad.push(`tollgate policy show: revision ${n}: ${printable(e.message)}\n`);
      }
    }
    if (rows.length) io.out('REVISION  PUBLISHED                 CONTENT        FILES\n' + rows.join(''));
    for (const b of bad) io.err(b);
    return bad.length ? 1 : 0;
  }
  const n = Number(v.revision);
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`--revision must be a revision number ≥ 1, got "${v.revision}"`);
  let rev;
  try {
    rev = readRevision(dir, n);
  } catch (e) {
    if (!(e instanceof RevisionNotFoundError || e instanceof RevisionReadError)) throw e;
    io.err(`tollgate policy show: ${printable(e.message)}\n`);
    return 1;
  }
  const { index, source } = rev;
  const files = v.file === undefined ? index.files : index.files.filter((f) => f.path === v.file!.replace(/^\/+/, ''));
  if (v.file !== undefined && !files.length) {
    io.err(`tollgate policy show: revision ${n} has no file ${printable(v.file)} (it has ${index.files.map((f) => printable(f.path)).join(', ')})\n`);
    return 1;
  }
  if (v.file === undefined) {
    io.out(`revision ${index.revision}  published ${printable(index.published_at)}  signed by ${printable(index.kid)}\n`);
    io.out(`content sha256 ${printable(index.content_sha256)}\nbundle  sha256 ${printable(index.bundle_sha256)}\n\n`);
    for (const f of index.files) io.out(`  ${printable(f.sha256.slice(0, 12))}  ${String(f.size).padStart(7)}  ${printable(f.path)}\n`);
  }
  // A file that leads outside the revision or no longer matches its recorded hash is refused and
  // reported; the other files are still shown.
  let refused = 0;
  for (const f of files) {
    let text: string;
    try {
      text = source(f.path).toString('utf8');
    } catch (e) {
      if (!(e instanceof RevisionReadError)) throw e;
      io.err(`tollgate policy show: revision ${n}: ${printable(e.message)}\n`);
      refused++;
      continue;
    }
    if (v.file === undefined) io.out(`\n--- ${printable(f.path)} (sha256 ${printable(f.sha256)})\n`);
    io.out(text.endsWith('\n') ? text : `${text}\n`);
  }
  return refused ? 1 : 0;
}
