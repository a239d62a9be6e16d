import { listLogFiles, readLines, type LogFile } from './files.js';
import { chained, parseLine } from './lines.js';
import { isAccounting, type ChainedDecisionRecord, type ChainedLogEntry } from './types.js';

/** A line of the chain as read back: a decision or an accounting record. */
export interface LoggedEntry {
  record: ChainedLogEntry;
  /** The line as written (canonical JSON, no newline). */
  line: string;
  file: string;
  lineNo: number;
}

export interface LoggedRecord {
  record: ChainedDecisionRecord;
  /** The line as written (canonical JSON, no newline). */
  line: string;
  file: string;
  lineNo: number;
}

/**
 * Reads the chain of a log directory (decisions and accounting records) in order, from a seq on,
 * in batches: used to catch a replica up from the local log. Lines that are not complete yet (a
 * write in progress) are left for the next batch; invalid lines are skipped (`tollgate logs
 * verify` is the place that reports them).
 */
export class EntryCursor {
  private file: LogFile | null = null;
  private offset = 0;
  private lineNo = 0;

  constructor(private readonly dir: string, private nextSeq = 1) {}

  /** The seq the next record returned will have at least. */
  get position(): number {
    return this.nextSeq;
  }

  /** Up to `max` records with seq ≥ position; [] when the reader is at the end of the log for now. */
  read(max: number): LoggedEntry[] {
    const out: LoggedEntry[] = [];
    if (!this.file && !this.locate()) return out;
    for (;;) {
      const f = this.file!;
      for (const raw of readLines(f.path, this.offset, this.lineNo)) {
        if (!raw.complete) break;
        this.offset = raw.offset + Buffer.byteLength(raw.text) + 1;
        this.lineNo = raw.lineNo;
        const r = chained(parseLine(raw.text));
        if (!r || r.seq < this.nextSeq) continue;
        this.nextSeq = r.seq + 1;
        out.push({ record: r, line: raw.text, file: f.name, lineNo: raw.lineNo });
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
      const startSeq = p.kind === 'head' ? p.head.next_seq : chained(p)?.seq ?? null;
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

/** Decision records only (what `logs tail -f` follows); same contract as EntryCursor. */
export class LogCursor {
  private readonly entries: EntryCursor;
  constructor(dir: string, nextSeq = 1) {
    this.entries = new EntryCursor(dir, nextSeq);
  }

  get position(): number {
    return this.entries.position;
  }

  /** Up to `max` decision records; [] only at the end of the log for now. */
  read(max: number): LoggedRecord[] {
    for (;;) {
      const got = this.entries.read(max);
      if (got.length === 0) return [];
      const records = got.filter((e): e is LoggedRecord => !isAccounting(e.record));
      if (records.length > 0) return records;
    }
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

/** Decisions and accounting records of explicit files, in order. */
export function* readEntriesOfFiles(files: readonly LogFile[]): Generator<LoggedEntry> {
  for (const f of files) {
    for (const raw of readLines(f.path)) {
      if (!raw.complete) continue;
      const r = chained(parseLine(raw.text));
      if (r) yield { record: r, line: raw.text, file: f.name, lineNo: raw.lineNo };
    }
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
