import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { readLines, type LogFile } from '../decisionlog/files.js';
import { parseLine } from '../decisionlog/lines.js';
import { revisionOf } from '../decisionlog/query.js';
import type { ChainedAccountingRecord, ChainedDecisionRecord } from '../decisionlog/types.js';
import { Column, Dict } from './columns.js';

/**
 * The review index: one row per decision record of a log, holding where its line is (file,
 * byte offset, length, line number) and the fields the timeline filters on, as dictionary ids in
 * typed arrays. Built incrementally: each refresh reads only what was appended since the last
 * one, so a live log is followed without rereading it. The records themselves stay on disk; a
 * detail view reads one line back by its offset.
 */

/** The string fields a reviewer filters on, in the order the columns are kept. */
export const FIELDS = ['team', 'sub', 'agent', 'server', 'namespace', 'tool', 'method', 'revision', 'reason'] as const;
export type Field = typeof FIELDS[number];

export const FLAG_ALLOW = 1;
/** Refused before policy (bad token, malformed body...): `result.error` is set. */
export const FLAG_ERROR = 2;

/** Token count not known (no count in the record, or no accounting record yet). */
export const NO_TOKENS = 0xffffffff;

/** Where one line is. */
export interface LinePlace {
  file: string;
  line: number;
  offset: number;
  length: number;
}

interface FilePos {
  no: number;
  file: LogFile;
  offset: number;
  lineNo: number;
}

/** Decisions still waiting for their accounting record; bounded (a response may never come). */
const MAX_WAITING = 200_000;

export class LogIndex {
  /** Number of decision rows. */
  size = 0;
  /** Every chained line seen (decisions, accounting), for progress reports. */
  linesRead = 0;
  /** Lines that are not JSON records (left to `logs verify` to judge). */
  invalid = 0;
  readonly dicts: Record<Field, Dict> = Object.fromEntries(FIELDS.map((f) => [f, new Dict()])) as Record<Field, Dict>;
  readonly cols: Record<Field, Column<Uint32Array>> = Object.fromEntries(FIELDS.map((f) => [f, new Column(Uint32Array)])) as Record<Field, Column<Uint32Array>>;
  readonly time = new Column(Float64Array);
  readonly flags = new Column(Uint8Array);
  readonly tokensIn = new Column(Uint32Array);
  readonly tokensOut = new Column(Uint32Array);
  private readonly fileNo = new Column(Uint16Array);
  private readonly offset = new Column(Float64Array);
  private readonly length = new Column(Uint32Array);
  private readonly lineNo = new Column(Uint32Array);
  // The accounting line of a row, if one came (length 0: none).
  private readonly acctFileNo = new Column(Uint16Array);
  private readonly acctOffset = new Column(Float64Array);
  private readonly acctLength = new Column(Uint32Array);
  private readonly acctLineNo = new Column(Uint32Array);
  /** Budget standings carried by records: one entry per (row, budget). */
  readonly budgets = { size: 0, row: new Column(Uint32Array), name: new Column(Uint32Array), remaining: new Column(Float64Array), limit: new Column(Float64Array) };
  readonly budgetNames = new Dict();
  private readonly files: FilePos[] = [];
  private readonly waiting = new Map<string, number>();

  /** Row of a decision id, only while its accounting record is still expected. */
  private link(acct: ChainedAccountingRecord, place: FilePos, offset: number, length: number, lineNo: number): void {
    const row = this.waiting.get(acct.decision_id);
    if (row === undefined) return;
    this.waiting.delete(acct.decision_id);
    this.acctFileNo.set(row, place.no);
    this.acctOffset.set(row, offset);
    this.acctLength.set(row, length);
    this.acctLineNo.set(row, lineNo);
    this.tokensOut.set(row, Math.min(acct.tokens.response, NO_TOKENS - 1));
  }

  private add(r: ChainedDecisionRecord, place: FilePos, offset: number, length: number, lineNo: number): void {
    const row = this.size++;
    const reasons = r.result.reasons.length > 0 ? r.result.reasons.join('\n') : r.result.error;
    const values: Record<Field, string | null> = {
      team: r.identity?.team ?? null, sub: r.identity?.sub ?? null, agent: r.identity?.agent ?? null,
      server: r.mcp?.server ?? null, namespace: r.mcp?.namespace ?? null, tool: r.mcp?.tool ?? null, method: r.mcp?.method ?? null,
      revision: revisionOf(r), reason: reasons ?? null,
    };
    for (const f of FIELDS) this.cols[f].set(row, this.dicts[f].id(typeof values[f] === 'string' ? values[f] : null));
    const t = Date.parse(r.timestamp);
    this.time.set(row, Number.isNaN(t) ? 0 : t);
    this.flags.set(row, (r.result.allow ? FLAG_ALLOW : 0) | (r.result.error ? FLAG_ERROR : 0));
    const tin = r.tokens?.request;
    this.tokensIn.set(row, typeof tin === 'number' && tin >= 0 ? Math.min(tin, NO_TOKENS - 1) : NO_TOKENS);
    this.tokensOut.set(row, NO_TOKENS);
    this.fileNo.set(row, place.no);
    this.offset.set(row, offset);
    this.length.set(row, length);
    this.lineNo.set(row, lineNo);
    this.acctLength.set(row, 0);
    for (const b of Array.isArray(r.budget) ? r.budget : []) {
      if (typeof b?.name !== 'string' || typeof b.remaining !== 'number' || typeof b.limit !== 'number') continue;
      const i = this.budgets.size++;
      this.budgets.row.set(i, row);
      this.budgets.name.set(i, this.budgetNames.id(b.name));
      this.budgets.remaining.set(i, b.remaining);
      this.budgets.limit.set(i, b.limit);
    }
    if (r.result.allow && typeof r.decision_id === 'string') {
      this.waiting.set(r.decision_id, row);
      if (this.waiting.size > MAX_WAITING) this.waiting.delete(this.waiting.keys().next().value as string);
    }
  }

  /**
   * Reads what was appended to `files` since the last call. Returns false, having read nothing,
   * when a file it had read shrank or went away: the log was rewritten, and the caller builds a
   * new index. Yields to the event loop every `batch` lines so a server stays responsive while a
   * large log is indexed.
   */
  async refresh(files: readonly LogFile[], batch = 20_000): Promise<boolean> {
    for (const known of this.files) {
      const now = files.find((f) => f.path === known.file.path);
      if (!now || sizeOf(now.path) < known.offset) return false;
    }
    for (const f of files) {
      let pos = this.files.find((p) => p.file.path === f.path);
      if (!pos) {
        if (this.files.length >= 0xffff) throw new Error('more than 65535 log files: index a narrower directory');
        pos = { no: this.files.length, file: f, offset: 0, lineNo: 0 };
        this.files.push(pos);
      }
      let n = 0;
      for (const raw of readLines(f.path, pos.offset, pos.lineNo)) {
        if (!raw.complete) break;
        const length = Buffer.byteLength(raw.text);
        pos.offset = raw.offset + length + 1;
        pos.lineNo = raw.lineNo;
        const p = parseLine(raw.text);
        if (p.kind === 'record') this.add(p.record, pos, raw.offset, length, raw.lineNo);
        else if (p.kind === 'accounting') this.link(p.record, pos, raw.offset, length, raw.lineNo);
        else if (p.kind === 'invalid') this.invalid++;
        if (p.kind === 'record' || p.kind === 'accounting') this.linesRead++;
        if (++n % batch === 0) await new Promise((r) => setImmediate(r));
      }
    }
    return true;
  }

  /** Where a row's decision line is. */
  place(row: number): LinePlace {
    const f = this.files[this.fileNo.data[row]!]!.file;
    return { file: f.name, line: this.lineNo.data[row]!, offset: this.offset.data[row]!, length: this.length.data[row]! };
  }

  /** Where a row's accounting line is, if one came. */
  accountingPlace(row: number): LinePlace | null {
    const length = this.acctLength.data[row]!;
    if (length === 0) return null;
    const f = this.files[this.acctFileNo.data[row]!]!.file;
    return { file: f.name, line: this.acctLineNo.data[row]!, offset: this.acctOffset.data[row]!, length };
  }

  /** Reads a line back; null if the file no longer holds it (rewritten since). */
  readLine(place: LinePlace): string | null {
    const f = this.files.find((x) => x.file.name === place.file);
    if (!f) return null;
    const fd = openSync(f.file.path, 'r');
    try {
      const buf = Buffer.alloc(place.length);
      const n = readSync(fd, buf, 0, place.length, place.offset);
      return n === place.length ? buf.toString('utf8') : null;
    } finally {
      closeSync(fd);
    }
  }

  /** Tokens in, out of a row (null when unknown). */
  tokens(row: number): { in: number | null; out: number | null } {
    const a = this.tokensIn.data[row]!;
    const b = this.tokensOut.data[row]!;
    return { in: a === NO_TOKENS ? null : a, out: b === NO_TOKENS ? null : b };
  }

  /** Bytes held by the columns (dictionaries and the pending-accounting map not counted). */
  columnBytes(): number {
    let n = 0;
    for (const f of FIELDS) n += this.cols[f].bytes();
    for (const c of [this.time, this.flags, this.tokensIn, this.tokensOut, this.fileNo, this.offset, this.length, this.lineNo, this.acctFileNo, this.acctOffset, this.acctLength, this.acctLineNo]) n += c.bytes();
    for (const c of [this.budgets.row, this.budgets.name, this.budgets.remaining, this.budgets.limit]) n += c.bytes();
    return n;
  }
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return -1;
  }
}
