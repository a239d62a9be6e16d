import { listLogFiles, readLines, type LogFile } from './files.js';
import { chained, entryShapeProblem, parseLine, SkippedLines } from './lines.js';
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

/** Where a skipped line is, as readers report it. */
const at = (file: string, line: number) => (): string => `${file}:${line}`;

const INCOMPLETE = 'incomplete last line (no newline): a write in progress, or cut off';

/**
 * Reads the chain of a log directory (decisions and accounting records) in order, from a seq on,
 * in batches: used to catch a replica up from the local log. Lines that are not complete yet (a
 * write in progress) are left for the next batch; invalid lines are skipped, and counted in
 * `skipped` when given (`tollgate logs verify` is the place that judges them). Records are
 * returned whatever their fields hold: the chain is replicated as it is.
 */
export class EntryCursor {
  private file: LogFile | null = null;
  private offset = 0;
  private lineNo = 0;
  /** Past the position (lines before it were read by whoever chose it, and counted then). */
  private past: boolean;

  constructor(private readonly dir: string, private nextSeq = 1, private readonly skipped: SkippedLines | null = null) {
    this.past = nextSeq <= 1;
  }

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
        const p = parseLine(raw.text);
        const r = chained(p);
        if (!r) {
          if (p.kind === 'head' && p.head.next_seq >= this.nextSeq) this.past = true;
          if (p.kind === 'invalid' && this.past) this.skipped?.note('unreadable', { where: `${f.name}:${raw.lineNo}`, problem: p.problem });
          continue;
        }
        if (r.seq < this.nextSeq) {
          this.past ||= r.seq === this.nextSeq - 1;
          continue;
        }
        this.past = true;
        this.nextSeq = r.seq + 1;
        out.push({ record: r, line: raw.text, file: f.name, lineNo: raw.lineNo });
        if (out.length >= max) return out;
      }
      // End of this file for now: move on only if a newer file exists (the writer rotated).
      const next = listLogFiles(this.dir).find((x) => x.index > f.index);
      if (!next) return out;
      this.past = true;
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

/**
 * Decision records only (what `logs tail -f` follows); same contract as EntryCursor, except that
 * records whose fields readers cannot use (entryShapeProblem) are skipped too, counted in `skipped`.
 */
export class LogCursor {
  private readonly entries: EntryCursor;
  constructor(dir: string, nextSeq = 1, private readonly skipped = new SkippedLines()) {
    this.entries = new EntryCursor(dir, nextSeq, skipped);
  }

  get position(): number {
    return this.entries.position;
  }

  /** Up to `max` decision records; [] only at the end of the log for now. */
  read(max: number): LoggedRecord[] {
    for (;;) {
      const got = this.entries.read(max);
      if (got.length === 0) return [];
      const records = got.filter((e): e is LoggedRecord => {
        const problem = entryShapeProblem(e.record);
        if (problem === null) return !isAccounting(e.record);
        this.skipped.note('malformed', { where: `${e.file}:${e.lineNo}`, problem }, e.record.seq);
        return false;
      });
      if (records.length > 0) return records;
    }
  }
}

/** Every record of a log directory, in order (streaming). */
export function* readRecords(dir: string, fromSeq = 1, batch = 1024, skipped = new SkippedLines()): Generator<LoggedRecord> {
  const cursor = new LogCursor(dir, fromSeq, skipped);
  for (;;) {
    const got = cursor.read(batch);
    if (got.length === 0) return;
    yield* got;
  }
}

/**
 * Decisions and accounting records of explicit files, in order, for readers of decisions: a line
 * that is not a line of the log (not JSON, cut off, neither record, checkpoint nor head) or a
 * record whose fields have the wrong type (entryShapeProblem) is skipped and counted in `skipped`,
 * with its file:line, for the reader to report.
 */
export function* readEntriesOfFiles(files: readonly LogFile[], skipped = new SkippedLines()): Generator<LoggedEntry> {
  for (const f of files) {
    for (const raw of readLines(f.path)) {
      if (!raw.complete) {
        skipped.note('unreadable', { where: at(f.name, raw.lineNo)(), problem: INCOMPLETE });
        continue;
      }
      const r = skipped.take(raw.text, at(f.name, raw.lineNo));
      if (r) yield { record: r, line: raw.text, file: f.name, lineNo: raw.lineNo };
    }
  }
}

/** Decision records of explicit files (a FILE argument, or files of another log), in order; same contract. */
export function* readRecordsOfFiles(files: readonly LogFile[], skipped = new SkippedLines()): Generator<LoggedRecord> {
  for (const e of readEntriesOfFiles(files, skipped)) if (!isAccounting(e.record)) yield e as LoggedRecord;
}
