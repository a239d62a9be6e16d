import { listLogFiles, readLines, type LogFile } from './files.js';
import { parseLine } from './lines.js';
import type { ChainedDecisionRecord } from './types.js';

export interface LoggedRecord {
  record: ChainedDecisionRecord;
  /** The line as written (canonical JSON, no newline). */
  line: string;
  file: string;
  lineNo: number;
}

/**
 * Reads records of a log directory in chain order, from a seq on, in batches: used to catch a
 * replica up from the local log and to follow the log (`tollgate logs tail -f`). Lines that are
 * not complete yet (a write in progress) are left for the next batch; invalid lines are skipped
 * (`tollgate logs verify` is the place that reports them).
 */
export class LogCursor {
  private file: LogFile | null = null;
  private offset = 0;
  private lineNo = 0;

  constructor(private readonly dir: string, private nextSeq = 1) {}

  /** The seq the next record returned will have at least. */
  get position(): number {
    return this.nextSeq;
  }

  /** Up to `max` records with seq ≥ position; [] when the reader is at the end of the log for now. */
  read(max: number): LoggedRecord[] {
    const out: LoggedRecord[] = [];
    if (!this.file && !this.locate()) return out;
    for (;;) {
      const f = this.file!;
      for (const raw of readLines(f.path, this.offset, this.lineNo)) {
        if (!raw.complete) break;
        this.offset = raw.offset + Buffer.byteLength(raw.text) + 1;
        this.lineNo = raw.lineNo;
        const p = parseLine(raw.text);
        if (p.kind !== 'record' || p.record.seq < this.nextSeq) continue;
        this.nextSeq = p.record.seq + 1;
        out.push({ record: p.record, line: raw.text, file: f.name, lineNo: raw.lineNo });
        if (out.length >= max) return out;
      }
      // End of this file for now: move on only if a newer file exists (the writer rotated).
      const next = listLogFiles(this.dir).find((x) => x.index > f.index);
      if (!next) return out;
      this.file = next;
      this.offset = 0;
      this.lineNo = 0;
    }
  }

  /** Picks the file holding nextSeq: the last whose head says it starts at or before it. */
  private locate(): boolean {
    const files = listLogFiles(this.dir);
    if (files.length === 0) return false;
    let chosen = files[0]!;
    for (let i = files.length - 1; i >= 0; i--) {
      const first = readLines(files[i]!.path).next();
      if (first.done || !first.value.complete) continue;
      const p = parseLine(first.value.text);
      const startSeq = p.kind === 'head' ? p.head.next_seq : p.kind === 'record' ? p.record.seq : null;
      if (startSeq !== null && startSeq <= this.nextSeq) {
        chosen = files[i]!;
        break;
      }
    }
    this.file = chosen;
    this.offset = 0;
    this.lineNo = 0;
    return true;
  }
}

/** Every record of a log directory, in order (streaming). */
export function* readRecords(dir: string, fromSeq = 1, batch = 1024): Generator<LoggedRecord> {
  const cursor = new LogCursor(dir, fromSeq);
  for (;;) {
    const got = cursor.read(batch);
    if (got.length === 0) return;
    yield* got;
  }
}

/** Records of explicit files (a FILE argument, or files of another log), in order. */
export function* readRecordsOfFiles(files: readonly LogFile[]): Generator<LoggedRecord> {
  for (const f of files) {
    for (const raw of readLines(f.path)) {
      if (!raw.complete) continue;
      const p = parseLine(raw.text);
      if (p.kind === 'record') yield { record: p.record, line: raw.text, file: f.name, lineNo: raw.lineNo };
    }
  }
}
