import { canonicalize } from './canonical.js';
import { GENESIS_HASH, sha256Hex } from './chain.js';
import { verifyCheckpoint, type TrustedKeys } from './checkpoint.js';
import { readLines, type LogFile } from './files.js';
import { classify } from './lines.js';
import type { ChainedLogEntry, CheckpointLine, HeadLine } from './types.js';
import type { WitnessedCheckpoint } from './witness.js';

/**
 * Verification of a decision log: the hash chain across files, the checkpoint signatures, and the
 * log's completeness, reported as precisely as the evidence allows (file:line of the break).
 *
 * It streams: memory stays flat for an intact log, and grows only with the number of anomalies.
 */

export type ProblemKind =
  | 'edited' // a record's content no longer matches the hash the chain recorded for it
  | 'deleted' // seq numbers missing
  | 'reordered' // a record is not where its seq says it belongs
  | 'duplicate' // a seq appears twice
  | 'truncated' // the log ends early: torn last line, or a checkpoint covers records that are gone
  | 'forged_checkpoint' // bad signature, unknown key, or clear-text fields that differ from the signed ones
  | 'malformed'; // a line that is not a record, checkpoint or file head

export type WarningKind =
  | 'crash_recovered' // torn line from a crash, noted by the writer when it restarted
  | 'unsigned_tail' // records after the last checkpoint (normal for a live log)
  | 'no_checkpoints'
  | 'signatures_unchecked'
  | 'key_from_log_dir'
  | 'partial' // verification of a single file, or of a log whose start is not here
  | 'not_canonical'
  | 'checkpoint_unchecked'
  | 'write_in_progress' // incomplete last line of a log a live writer holds
  | 'no_witness' // nothing anchors the end of the log outside it
  | 'witness_torn'; // the witness ends with an incomplete line (a crash while anchoring)

export interface Finding {
  kind: ProblemKind | WarningKind;
  severity: 'error' | 'warning';
  file: string | null;
  line: number | null;
  seq: number | null;
  message: string;
}

export interface VerifyReport {
  /** Intact: no error, and there was something to verify (at least one line of a decision log). */
  ok: boolean;
  files: string[];
  records: number;
  /** File head lines read (one opens every file the writer starts). */
  heads: number;
  firstSeq: number | null;
  lastSeq: number | null;
  checkpoints: number;
  verifiedCheckpoints: number;
  /** Highest seq covered by a valid checkpoint. */
  signedThrough: number | null;
  findings: Finding[];
}

export interface VerifyOptions {
  /** Public keys trusted for checkpoint signatures; null skips signature checks (with a warning). */
  keys: TrustedKeys | null;
  /** Where the keys came from, when that place is the log directory itself. */
  keysFromLogDir?: string | null;
  /**
   * True when `files` is a whole log (a directory): it must start at seq 1 from the genesis hash.
   * False for a single file or a partial log: the first record is taken as given.
   */
  whole: boolean;
  /** Stop collecting after this many findings (the verdict is unaffected). */
  maxFindings?: number;
  /**
   * A live writer holds the log (pid in LOCK): an incomplete last line may be a write in
   * progress rather than a truncation, so it is a warning.
   */
  live?: boolean;
  /**
   * Checkpoints copied to the witness (witness.ts): anchors outside the log. A log that ends
   * before the last of them was truncated or lost its newest file.
   */
  witness?: { path: string; anchors: readonly WitnessedCheckpoint[]; problems: ReadonlyArray<{ line: number; problem: string }> } | null;
}

interface Loc {
  file: string;
  line: number;
}

interface Seen {
  seq: number;
  hash: string;
  prevHash: string;
  loc: Loc;
}

const where = (l: Loc): string => `${l.file}:${l.line}`;
const range = (a: number, b: number): string => (a === b ? `seq ${a}` : `seq ${a}..${b}`);

/** Missing seq ranges, kept sorted, split as late records fill them. */
class Gaps {
  private list: Array<{ from: number; to: number; after: Loc | null; before: Loc }> = [];
  add(from: number, to: number, after: Loc | null, before: Loc): void {
    this.list.push({ from, to, after, before });
  }
  /** Removes seq from a gap; returns the gap it was in. */
  take(seq: number): { from: number; to: number; after: Loc | null; before: Loc } | null {
    const i = this.list.findIndex((g) => seq >= g.from && seq <= g.to);
    if (i < 0) return null;
    const g = this.list[i]!;
    const parts = [];
    if (g.from < seq) parts.push({ ...g, to: seq - 1 });
    if (seq < g.to) parts.push({ ...g, from: seq + 1 });
    this.list.splice(i, 1, ...parts);
    return g;
  }
  has(seq: number): boolean {
    return this.list.some((g) => seq >= g.from && seq <= g.to);
  }
  remaining(): ReadonlyArray<{ from: number; to: number; after: Loc | null; before: Loc }> {
    return this.list;
  }
}

const RECENT = 4096;

class ChainVerifier {
  readonly findings: Finding[] = [];
  private errors = 0;
  records = 0;
  heads = 0;
  checkpoints = 0;
  verifiedCheckpoints = 0;
  signedThrough: number | null = null;
  firstSeq: number | null = null;
  private prev: Seen | null = null;
  private maxSeq = 0;
  private readonly gaps = new Gaps();
  /** Records whose successor has not been linked yet (their next line was not seq+1). */
  private readonly dangling = new Map<number, Seen>();
  /** Records whose predecessor was not seen yet, by the predecessor's seq. */
  private readonly waiting = new Map<number, Seen>();
  /** Hashes of recent records, for checkpoints (written right after the record they cover). */
  private readonly recent = new Map<number, Seen>();
  /** Highest seq a validly signed checkpoint covers that does NOT match the log (an error already). */
  private brokenThrough = 0;
  /** Valid checkpoints naming a seq not seen yet. */
  private readonly ahead = new Map<number, { hash: string; loc: Loc }>();
  private notCanonical = 0;
  /** Witnessed checkpoints by seq, taken out as their records are seen. */
  private readonly anchors = new Map<number, WitnessedCheckpoint>();
  private readonly anchorMismatches: Array<{ anchor: WitnessedCheckpoint; rec: Seen }> = [];
  private lastLoc: Loc | null = null;
  private readonly fileNames = new Set<string>();
  private pendingTorn: { file: string; offset: number; bytes: number; loc: Loc } | null = null;

  constructor(private readonly opts: VerifyOptions) {
    for (const a of opts.witness?.anchors ?? []) this.anchors.set(a.entry.checkpoint.seq, a);
  }

  noteFile(name: string): void {
    this.fileNames.add(name);
  }

  get broken(): boolean {
    return this.errors > 0;
  }

  add(kind: Finding['kind'], severity: Finding['severity'], loc: Loc | null, seq: number | null, message: string): void {
    if (severity === 'error') this.errors++;
    if (this.findings.length >= (this.opts.maxFindings ?? 1000)) return;
    this.findings.push({ kind, severity, file: loc?.file ?? null, line: loc?.line ?? null, seq, message });
  }

  record(r: ChainedLogEntry, text: string, loc: Loc): void {
    const canonical = canonicalize(r);
    if (canonical !== text && this.notCanonical++ === 0) {
      this.add('not_canonical', 'warning', loc, r.seq, 'line is not in RFC 8785 form (re-serialised?); its hash is taken over the canonical form');
    }
    const cur: Seen = { seq: r.seq, hash: sha256Hex(canonical), prevHash: r.prev_hash, loc };
    this.records++;
    const prev = this.prev;
    if (prev === null) this.first(cur);
    else if (cur.seq === prev.seq + 1) this.link(prev, cur);
    else this.outOfLine(prev, cur);

    const successor = this.waiting.get(cur.seq);
    if (successor) {
      this.waiting.delete(cur.seq);
      this.link(cur, successor);
    }
    const ck = this.ahead.get(cur.seq);
    if (ck) {
      this.ahead.delete(cur.seq);
      this.compareCheckpoint(ck.hash, ck.loc, cur);
    }
    const anchor = this.anchors.get(cur.seq);
    if (anchor) {
      this.anchors.delete(cur.seq);
      if (anchor.entry.checkpoint.hash !== cur.hash) this.anchorMismatches.push({ anchor, rec: cur });
    }
    if (cur.seq > this.maxSeq) {
      this.maxSeq = cur.seq;
      this.lastLoc = cur.loc;
    }
    this.recent.set(cur.seq, cur);
    if (this.recent.size > RECENT) this.recent.delete(this.recent.keys().next().value as number);
    this.prev = cur;
  }

  private first(cur: Seen): void {
    this.firstSeq = cur.seq;
    if (!this.opts.whole) {
      if (cur.seq !== 1) this.add('partial', 'warning', cur.loc, cur.seq, `verification starts at seq ${cur.seq}; records before it (earlier files) were not checked`);
      return;
    }
    if (cur.seq !== 1) {
      this.add('deleted', 'error', cur.loc, cur.seq, `the log starts at seq ${cur.seq}: ${range(1, cur.seq - 1)} are missing (earlier files or records deleted)`);
    } else if (cur.prevHash !== GENESIS_HASH) {
      this.add('edited', 'error', cur.loc, cur.seq, 'the first record does not start from the genesis hash: it was altered, or the log was cut from a longer one');
    }
  }

  private link(a: Seen, b: Seen): void {
    if (b.prevHash === a.hash) return;
    this.add('edited', 'error', a.loc, a.seq,
      `record seq ${a.seq} at ${where(a.loc)} was altered: its hash no longer matches the prev_hash stored in seq ${b.seq} at ${where(b.loc)}`);
  }

  private outOfLine(prev: Seen, cur: Seen): void {
    this.dangling.set(prev.seq, prev);
    if (cur.seq <= this.maxSeq) {
      const gap = this.gaps.take(cur.seq);
      if (gap) {
        this.add('reordered', 'error', cur.loc, cur.seq,
          `record seq ${cur.seq} at ${where(cur.loc)} is out of order: it follows seq ${prev.seq} but belongs before ${gap.before ? where(gap.before) : 'the record after it'}`);
      } else {
        const earlier = this.recent.get(cur.seq);
        const same = earlier?.hash === cur.hash;
        this.add('duplicate', 'error', cur.loc, cur.seq, same
          ? `record seq ${cur.seq} at ${where(cur.loc)} is a second copy of a record already in the log`
          : `record seq ${cur.seq} at ${where(cur.loc)} reuses a seq already in the log with different content (inserted or replayed record)`);
      }
    } else if (cur.seq > this.maxSeq + 1) {
      const from = this.maxSeq + 1;
      const to = cur.seq - 1;
      const after = prev.seq === this.maxSeq ? prev.loc : null;
      this.gaps.add(from, to, after, cur.loc);
    }
    const pred = this.dangling.get(cur.seq - 1);
    if (pred) {
      this.dangling.delete(cur.seq - 1);
      this.link(pred, cur);
    } else if (cur.seq > 1) {
      this.waiting.set(cur.seq - 1, cur);
    }
  }

  async checkpoint(c: CheckpointLine, loc: Loc): Promise<void> {
    this.checkpoints++;
    let seq = c.seq;
    let hash = c.hash;
    if (this.opts.keys) {
      const res = await verifyCheckpoint(c, this.opts.keys);
      if (!res.ok) {
        this.add('forged_checkpoint', 'error', loc, c.seq, `checkpoint at ${where(loc)} is forged: ${res.problem}`);
        return;
      }
      seq = res.payload.seq;
      hash = res.payload.hash;
      this.verifiedCheckpoints++;
    }
    const known = this.recent.get(seq);
    if (known !== undefined) {
      this.compareCheckpoint(hash, loc, known);
      if (known.hash !== hash) return;
    } else if (seq > this.maxSeq) {
      this.ahead.set(seq, { hash, loc });
      return;
    } else if (this.gaps.has(seq)) {
      this.add('deleted', 'error', loc, seq, `checkpoint at ${where(loc)} covers seq ${seq}, which is missing from the log`);
      return;
    } else {
      this.add('checkpoint_unchecked', 'warning', loc, seq, `checkpoint at ${where(loc)} names seq ${seq}, far from where it is written; its hash was not compared`);
    }
    if (this.opts.keys && (this.signedThrough === null || seq > this.signedThrough)) this.signedThrough = seq;
  }

  private compareCheckpoint(hash: string, loc: Loc, rec: Seen): void {
    if (rec.hash === hash) {
      if (this.opts.keys && (this.signedThrough === null || rec.seq > this.signedThrough)) this.signedThrough = rec.seq;
      return;
    }
    if (!this.opts.keys) {
      this.add('forged_checkpoint', 'error', loc, rec.seq, `checkpoint at ${where(loc)} says seq ${rec.seq} hashes to ${hash.slice(0, 16)}…, but the log's record hashes to ${rec.hash.slice(0, 16)}…`);
      return;
    }
    this.brokenThrough = Math.max(this.brokenThrough, rec.seq);
    // Everything through seq-1 matched a signed checkpoint, and the chain links held: the only
    // record this checkpoint can disagree with is seq itself (issue 18: say so, precisely).
    if (this.signedThrough === rec.seq - 1) {
      this.add('edited', 'error', rec.loc, rec.seq,
        `record seq ${rec.seq} at ${where(rec.loc)} was edited: it hashes to ${rec.hash.slice(0, 16)}…, but the checkpoint at ${where(loc)}, validly signed, says ${hash.slice(0, 16)}… (every record before it matches the checkpoint through seq ${rec.seq - 1})`);
      return;
    }
    const from = (this.signedThrough ?? 0) + 1;
    this.add('edited', 'error', loc, rec.seq,
      `checkpoint at ${where(loc)} is validly signed for seq ${rec.seq} with hash ${hash.slice(0, 16)}…, but the log's record seq ${rec.seq} hashes to ${rec.hash.slice(0, 16)}…: ` +
      `a record in ${range(from, rec.seq)} was edited${from < rec.seq ? ' and the ones after it re-chained' : ''}`);
  }

  head(h: HeadLine, loc: Loc, firstLineOfFile: boolean, prevFile: string | null): void {
    this.heads++;
    const lost = h.reason === 'recover' ? h.lost : null;
    if (lost) {
      this.add(lost.reason === 'deleted' ? 'deleted' : 'truncated', 'error', loc, lost.seq,
        `${loc.file} was started because ${lost.file} was ${lost.reason} while authz was writing it (the chain stood at seq ${lost.seq}; ` +
        `${lost.bytes_written} bytes written, ${lost.bytes_found} left): the records it held are gone from this directory`);
    }
    const noted = lost?.reason === 'deleted' && lost.file === h.prev_file;
    if (firstLineOfFile && !noted && h.prev_file && h.prev_file !== prevFile && (prevFile !== null || this.opts.whole)) {
      this.add('deleted', 'error', loc, h.next_seq, `${loc.file} continues ${h.prev_file}, which is missing${prevFile ? ` (the file before it here is ${prevFile})` : ''}`);
    }
    const torn = this.pendingTorn;
    this.pendingTorn = null;
    if (torn) {
      const noted = firstLineOfFile && h.reason === 'recover' && h.torn !== null && h.torn.file === torn.file && h.torn.offset === torn.offset && h.torn.bytes === torn.bytes;
      if (noted) {
        this.add('crash_recovered', 'warning', torn.loc, null,
          `torn line at ${where(torn.loc)} (${torn.bytes} bytes): a write was cut off by a crash, and the writer noted it when it restarted (${h.file}); no answered decision is lost with it`);
      } else {
        this.tornError(torn);
      }
    }
  }

  private tornError(t: { bytes: number; loc: Loc }): void {
    this.add('truncated', 'error', t.loc, null,
      `truncated tail: the last line at ${where(t.loc)} is incomplete (${t.bytes} bytes, no newline): a write was cut off, by a crash or by truncating the file; the chain is intact up to seq ${this.prev?.seq ?? 0}`);
  }

  torn(file: string, offset: number, bytes: number, loc: Loc, lastFile: boolean): void {
    if (lastFile && this.opts.live) {
      this.add('write_in_progress', 'warning', loc, null, `the last line at ${where(loc)} is incomplete (${bytes} bytes): the log is being written, so this is probably a write in progress; verify again to be sure`);
    } else if (lastFile) this.tornError({ bytes, loc });
    else this.pendingTorn = { file, offset, bytes, loc };
  }

  /**
   * Every file the writer starts opens with its head line (where the chain stands): a file whose
   * first line is a record or a checkpoint lost that line, or was not written by authz. The
   * records may still chain; the head is what says the file starts where it should (it is not
   * hashed, so this cannot say more).
   */
  headless(loc: Loc, what: string, seq: number | null): void {
    this.add('deleted', 'error', loc, seq,
      `${loc.file} has no head line: its first line is ${what}, but every file authz writes opens with a head line saying where the chain stands (the line was removed, or the file was not written by authz)`);
  }

  /** A torn line must be followed by a file that opens with a head line noting it. */
  firstLineOfFile(isHead: boolean): void {
    if (this.pendingTorn && !isHead) {
      const t = this.pendingTorn;
      this.pendingTorn = null;
      this.tornError(t);
    }
  }

  get lastSeq(): number | null {
    return this.records > 0 ? this.maxSeq : null;
  }

  /** Compares the log with the witness's anchors (signatures checked only where it matters). */
  async finishWitness(): Promise<void> {
    const w = this.opts.witness;
    if (!w) return;
    const at = (a: WitnessedCheckpoint): Loc => ({ file: a.witness, line: a.line });
    for (const p of w.problems) {
      this.add(p.problem.startsWith('incomplete') ? 'witness_torn' : 'malformed', p.problem.startsWith('incomplete') ? 'warning' : 'error',
        { file: w.path, line: p.line }, null, `witness line ${w.path}:${p.line}: ${p.problem}`);
    }
    const genuine = async (a: WitnessedCheckpoint): Promise<boolean> => {
      if (!this.opts.keys) return true;
      const res = await verifyCheckpoint(a.entry.checkpoint, this.opts.keys);
      if (!res.ok) this.add('forged_checkpoint', 'error', at(a), a.entry.checkpoint.seq, `witness entry at ${where(at(a))} is forged: ${res.problem}`);
      return res.ok;
    };
    for (const { anchor, rec } of this.anchorMismatches) {
      if (!(await genuine(anchor))) continue;
      this.add('edited', 'error', rec.loc, rec.seq,
        `the witness holds a signed checkpoint for seq ${rec.seq} with hash ${anchor.entry.checkpoint.hash.slice(0, 16)}… (${where(at(anchor))}), but the log's record at ${where(rec.loc)} hashes to ${rec.hash.slice(0, 16)}…: records up to seq ${rec.seq} were rewritten`);
    }
    let newest: WitnessedCheckpoint | null = null;
    for (const a of this.anchors.values()) if (a.entry.checkpoint.seq > this.maxSeq && (!newest || a.entry.checkpoint.seq > newest.entry.checkpoint.seq)) newest = a;
    if (!newest || !(await genuine(newest))) return;
    const ck = newest.entry.checkpoint;
    const ends = this.lastLoc ? `the log ends at seq ${this.maxSeq} (${where(this.lastLoc)})` : 'the log has no records';
    const gone = !this.fileNames.has(newest.entry.file) ? `; ${newest.entry.file}, where that checkpoint was written, is missing: the newest file was deleted` : '';
    this.add('truncated', 'error', this.lastLoc, this.maxSeq + 1,
      `truncated tail: ${ends}, but the witness holds a signed checkpoint for seq ${ck.seq} (${where(at(newest))}, written to ${newest.entry.file} at byte ${newest.entry.offset} on ${ck.timestamp}): ${range(this.maxSeq + 1, ck.seq)} are missing${gone}`);
  }

  finish(): void {
    if (this.pendingTorn) this.tornError(this.pendingTorn);
    for (const g of this.gaps.remaining()) {
      this.add('deleted', 'error', g.before, g.from,
        `${range(g.from, g.to)} missing: deleted between ${g.after ? where(g.after) : 'the previous record'} and ${where(g.before)}`);
    }
    for (const [seq, ck] of this.ahead) {
      if (seq > this.maxSeq) {
        this.add('truncated', 'error', ck.loc, seq,
          `truncated tail: checkpoint at ${where(ck.loc)} covers up to seq ${seq}, but the log ends at seq ${this.maxSeq}: ${range(this.maxSeq + 1, seq)} are missing`);
      }
    }
    if (this.records > 0 && this.checkpoints === 0) {
      this.add('no_checkpoints', 'warning', null, null, 'the log has no checkpoints: nothing is signed, so a rewritten chain would go unnoticed');
    } else if (this.opts.keys && this.maxSeq > Math.max(this.signedThrough ?? 0, this.brokenThrough)) {
      // Records a signed checkpoint covers are not an unsigned tail, even when it disagrees with them.
      const from = Math.max(this.signedThrough ?? 0, this.brokenThrough) + 1;
      this.add('unsigned_tail', 'warning', this.prev?.loc ?? null, from,
        `${range(from, this.maxSeq)} come after the last valid checkpoint: protected by the hash chain only until the next checkpoint is written (normal for a log being written)`);
    }
  }
}

/** Verifies log files given in chain order. */
export async function verifyLogFiles(files: readonly LogFile[], opts: VerifyOptions): Promise<VerifyReport> {
  const v = new ChainVerifier(opts);
  if (!opts.keys) v.add('signatures_unchecked', 'warning', null, null, 'no public key: checkpoint signatures were not checked (pass --key)');
  else if (opts.keysFromLogDir) {
    v.add('key_from_log_dir', 'warning', null, null,
      `checkpoint signatures were checked against ${opts.keysFromLogDir}, which lives next to the log and could have been replaced along with it; pass --key with a copy of the public key you trust`);
  }
  for (const f of files) v.noteFile(f.name);
  for (let fi = 0; fi < files.length; fi++) {
    const f = files[fi]!;
    const lastFile = fi === files.length - 1;
    let first = true;
    for (const raw of readLines(f.path)) {
      const loc = { file: f.name, line: raw.lineNo };
      if (!raw.complete) {
        if (first) v.firstLineOfFile(false);
        v.torn(f.name, raw.offset, Buffer.byteLength(raw.text), loc, lastFile);
        continue;
      }
      let value: unknown;
      try {
        value = JSON.parse(raw.text);
      } catch {
        if (first) v.firstLineOfFile(false);
        v.add('malformed', 'error', loc, null, `line at ${where(loc)} is not valid JSON: edited or corrupted`);
        first = false;
        continue;
      }
      const p = classify(value);
      if (first) {
        v.firstLineOfFile(p.kind === 'head');
        if (p.kind === 'record' || p.kind === 'accounting') v.headless(loc, `record seq ${p.record.seq}`, p.record.seq);
        else if (p.kind === 'checkpoint') v.headless(loc, `a checkpoint (seq ${p.checkpoint.seq})`, p.checkpoint.seq);
      }
      if (p.kind === 'record' || p.kind === 'accounting') v.record(p.record, raw.text, loc);
      else if (p.kind === 'checkpoint') await v.checkpoint(p.checkpoint, loc);
      else if (p.kind === 'head') v.head(p.head, loc, first, fi > 0 ? files[fi - 1]!.name : null);
      else v.add('malformed', 'error', loc, null, `line at ${where(loc)} is ${p.problem}: edited or corrupted`);
      first = false;
    }
  }
  v.finish();
  await v.finishWitness();
  if (opts.witness === null) {
    v.add('no_witness', 'warning', null, null, 'no witness file: records cut from the end of the log together with their checkpoints, or a deleted newest file, would go unnoticed (pass --witness)');
  }
  return {
    // Nothing read is nothing verified: an empty file, or one that is not a decision log, is never intact.
    ok: !v.broken && v.records + v.heads + v.checkpoints > 0,
    files: files.map((f) => f.name),
    records: v.records,
    heads: v.heads,
    firstSeq: v.firstSeq,
    lastSeq: v.lastSeq,
    checkpoints: v.checkpoints,
    verifiedCheckpoints: v.verifiedCheckpoints,
    signedThrough: v.signedThrough,
    findings: v.findings,
  };
}
