import { closeSync, constants, fdatasyncSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { canonicalize } from './canonical.js';
import { readLines, readTail } from './files.js';
import { classify } from './lines.js';
import type { CheckpointLine } from './types.js';

/**
 * The witness: an append-only file, kept outside the log directory, that receives a copy of every
 * signed checkpoint together with where in the log it was written. A checkpoint inside the log
 * can be cut away with the records it covers; its copy here cannot be removed by whoever rewrites
 * the log directory (give the witness another owner, an append-only attribute (`chattr +a`), or
 * a separate mount). The writer only ever opens it with O_APPEND.
 *
 * It is what lets the writer refuse to resume behind its last anchored checkpoint, and
 * `tollgate logs verify --witness` report a truncated tail or a deleted newest file.
 */

export const WITNESS_SCHEMA = 'tollgate.witness/v1';

export interface WitnessEntry {
  type: 'witness';
  schema: typeof WITNESS_SCHEMA;
  /** The log directory the checkpoint was written to (as the writer named it). */
  log: string;
  /** The log file and byte offset of the checkpoint line. */
  file: string;
  offset: number;
  checkpoint: CheckpointLine;
}

/** A witness entry and where it is in the witness file. */
export interface WitnessedCheckpoint {
  entry: WitnessEntry;
  witness: string;
  line: number;
}

/** `decisions` → `decisions.witness.jsonl` beside it (outside the directory). */
export function defaultWitnessPath(logDir: string): string {
  return join(dirname(logDir), `${basename(logDir)}.witness.jsonl`);
}

export class WitnessError extends Error {
  constructor(path: string, problem: string) {
    super(`decision log witness ${path}: ${problem}`);
    this.name = 'WitnessError';
  }
}

function parseEntry(text: string): WitnessEntry | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Partial<WitnessEntry>;
  if (o.type !== 'witness' || o.schema !== WITNESS_SCHEMA || typeof o.file !== 'string' || typeof o.offset !== 'number') return null;
  const c = classify(o.checkpoint);
  return c.kind === 'checkpoint' ? { ...(o as WitnessEntry), checkpoint: c.checkpoint } : null;
}

/** Every entry of a witness file, front to back; lines that are not entries are reported to `bad`. */
export function* readWitness(path: string, bad: (line: number, problem: string) => void = () => undefined): Generator<WitnessedCheckpoint> {
  for (const raw of readLines(path)) {
    if (!raw.complete) {
      bad(raw.lineNo, 'incomplete last line (a write cut off)');
      continue;
    }
    const entry = parseEntry(raw.text);
    if (entry) yield { entry, witness: path, line: raw.lineNo };
    else bad(raw.lineNo, 'not a witness entry');
  }
}

/** The writer's side: appends entries, and tells where the log must at least reach. */
export class WitnessFile {
  private fd: number;

  private constructor(readonly path: string, private readonly logDir: string) {
    try {
      mkdirSync(dirname(path), { recursive: true, mode: 0o750 });
      this.fd = openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o640);
    } catch (e) {
      throw new WitnessError(path, `cannot open it for appending (${(e as Error).message}); fix its permissions or set the witness path elsewhere`);
    }
  }

  static open(path: string, logDir: string): WitnessFile {
    return new WitnessFile(path, logDir);
  }

  /** The last complete entry, read from the end of the file. */
  last(): WitnessEntry | null {
    const tail = readTail(this.path);
    for (const line of tail.lines()) {
      const e = parseEntry(line.text);
      if (e) return e;
    }
    return null;
  }

  /** Appends and syncs one entry: it is the anchor a later truncation is measured against. */
  append(file: string, offset: number, checkpoint: CheckpointLine): void {
    const entry: WitnessEntry = { type: 'witness', schema: WITNESS_SCHEMA, log: this.logDir, file, offset, checkpoint };
    const buf = Buffer.from(canonicalize(entry) + '\n', 'utf8');
    let off = 0;
    while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off);
    fdatasyncSync(this.fd);
  }

  close(): void {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
  }
}

/** The line at `offset` of a file, or null if the file or the line is not there. */
export function lineAt(path: string, offset: number): string | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return null;
  }
  try {
    const buf = Buffer.allocUnsafe(64 * 1024);
    const n = readSync(fd, buf, 0, buf.length, offset);
    const nl = buf.subarray(0, n).indexOf(0x0a);
    return nl < 0 ? null : buf.toString('utf8', 0, nl);
  } finally {
    closeSync(fd);
  }
}
