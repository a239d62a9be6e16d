import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { isRevision } from './revision.js';

/**
 * The highest bundle revision a process has accepted (authz) or published (control plane), kept
 * in its state directory so that "revisions only move forward" holds across restarts. One file
 * per process, one entry per policy set (pointer key).
 */
export class RevisionFloor {
  private readonly floors: Record<string, number>;

  private constructor(readonly file: string, floors: Record<string, number>) {
    this.floors = floors;
  }

  /** Reads the file; a missing file is an empty floor, a corrupt one is an error (never a reset to 0). */
  static open(file: string): RevisionFloor {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new RevisionFloor(file, {});
      throw new Error(`cannot read the revision floor ${file}: ${(e as Error).message}`);
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw new Error(`revision floor ${file} is not valid JSON (${(e as Error).message}); restore it, or delete it only if you accept that an older policy could be loaded once`);
    }
    const floors: Record<string, number> = {};
    if (typeof doc === 'object' && doc !== null && !Array.isArray(doc)) {
      for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
        if (!isRevision(v)) throw new Error(`revision floor ${file}: "${k}" is not a revision`);
        floors[k] = v;
      }
    } else {
      throw new Error(`revision floor ${file} must be a JSON object of policy set → revision`);
    }
    return new RevisionFloor(file, floors);
  }

  get(pointerKey: string): number {
    return this.floors[pointerKey] ?? 0;
  }

  /** Raises the floor (never lowers it) and writes it durably before returning. */
  raise(pointerKey: string, revision: number): void {
    if (!isRevision(revision) || revision <= this.get(pointerKey)) return;
    this.floors[pointerKey] = revision;
    mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.floors) + '\n', { mode: 0o600 });
    renameSync(tmp, this.file);
  }
}
