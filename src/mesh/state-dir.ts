import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/**
 * The state directory of `tollgate up` holds policy revisions, sidecar configs, the decision log
 * and its checkpoint keys beside the private keys (those in 0700 subdirectories of their own). A
 * directory up makes is private to the user (0700), and so is its decisions/ (0750 as the log
 * writes it; the 0700 parent keeps the group out). One the user made is left as it is: its mode
 * is theirs to choose, but a mode that lets other users write (or read) in it is reported.
 */

export const STATE_DIR_MODE = 0o700;
export const DECISIONS_DIR_MODE = 0o750;

export interface PreparedStateDir {
  dir: string;
  /** up made the directory (with STATE_DIR_MODE). */
  created: boolean;
  /** What is wrong with the mode of a directory that was there already (empty when nothing). */
  warnings: string[];
}

/** Makes the state directory (and its decisions/) private when it does not exist; checks one that does. */
export function prepareStateDir(stateDir: string, uid: number | undefined = process.getuid?.()): PreparedStateDir {
  const dir = resolve(stateDir);
  const warnings: string[] = [];
  let created = false;
  if (!existsSync(dir)) {
    // Parents as mkdir -p makes them; only the state directory itself is private.
    mkdirSync(dirname(dir), { recursive: true });
    mkdirSync(dir, { mode: STATE_DIR_MODE });
    created = true;
  } else {
    const st = statSync(dir);
    if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
    const mode = st.mode & 0o777;
    const fix = `chmod 700 ${dir}`;
    if (mode & 0o022) {
      warnings.push(`state directory ${dir} is writable by ${mode & 0o002 ? 'every user' : 'its group'} (mode ${mode.toString(8).padStart(4, '0')}): another user could replace policies, sidecar configs or decision logs in it. Left as it is; run \`${fix}\``);
    } else if (mode & 0o007) {
      warnings.push(`state directory ${dir} can be read by every user (mode ${mode.toString(8).padStart(4, '0')}): policy revisions, sidecar configs and the decision log's public keys are visible to them. Left as it is; run \`${fix}\` to keep them private`);
    }
    if (uid !== undefined && st.uid !== uid) warnings.push(`state directory ${dir} belongs to another user (uid ${st.uid}), who can change anything in it`);
  }
  const decisions = join(dir, 'decisions');
  if (!existsSync(decisions)) mkdirSync(decisions, { mode: DECISIONS_DIR_MODE });
  return { dir, created, warnings };
}
