import { randomUUID } from 'node:crypto';
import { closeSync, constants, fdatasyncSync, fstatSync, mkdirSync, openSync, readFileSync, realpathSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { advance, chainRecord, GENESIS, recordHash, type ChainedEntry, type ChainHead } from './chain.js';
import { canonicalize } from './canonical.js';
import { checkpointPayload, signCheckpoint } from './checkpoint.js';
import { fdSize, listLogFiles, LOCK_FILE, LOG_FILE_RE, logFileName, PUBLIC_KEYS_FILE, readLines, readTail, type FileTail, type LogFile } from './files.js';
import { loadOrCreateSigningKey, type PublicJwk, type SigningKey } from './keys.js';
import { chained, parseLine } from './lines.js';
import { HEAD_SCHEMA, type AccountingRecordDraft, type CheckpointLine, type DecisionRecordDraft, type DecisionSink, type HeadLine, type HeadReason, type LogEntryDraft } from './types.js';
import { lineAt, WitnessFile } from './witness.js';

export type FsyncPolicy = 'always' | 'checkpoint' | 'never';

export interface FileSinkOptions {
  /** The log directory; one writer at a time (a lock file keeps a second out). */
  dir: string;
  /** A file is rotated before a record would take it past this size. */
  maxFileBytes: number;
  /** Sign a checkpoint after this many records... */
  checkpointEvery: number;
  /** ...and on this period while records are unsigned (0: no timer). */
  checkpointIntervalMs: number;
  /** Private key for checkpoints (PKCS#8 PEM or JWK); an Ed25519 key is created (0600) if missing. */
  signingKeyPath: string;
  /**
   * When to fdatasync. A record is in the OS once append() returns, which survives a crash of
   * authz; fsync is about surviving a crash of the machine.
   */
  fsync: FsyncPolicy;
  warn?: (message: string) => void;
  /** Injected clock, for tests. */
  now?: () => Date;
  /** Another key instead of the key file (tests, or a key held elsewhere). */
  signingKey?: SigningKey;
  /**
   * Append-only file outside the log directory that receives a copy of every checkpoint (see
   * witness.ts). The writer refuses to open a log that ends behind the witness's last entry.
   * Unset or null: no witness.
   */
  witnessPath?: string | null;
}

/** Told of every checkpoint once it is in the log (and the witness): replicas anchor it too. */
export type CheckpointListener = (c: { file: string; offset: number; checkpoint: CheckpointLine }) => void;

export interface FileSinkStats {
  dir: string;
  file: string;
  seq: number;
  records: number;
  checkpoints: number;
  rotations: number;
  writeErrors: number;
  /** Times the file being written was found deleted or truncated under the writer. */
  tampered?: number;
  /** Checkpoints that could not be copied to the witness. */
  witnessErrors?: number;
}

/** What the writer found when it opened the directory. */
export interface ResumeReport {
  file: string;
  seq: number;
  reason: 'genesis' | 'resumed' | HeadReason;
  torn: { file: string; offset: number; bytes: number } | null;
  corrupt: string[];
}

export class DecisionLogLockedError extends Error {
  constructor(dir: string, pid: number) {
    super(`decision log ${dir} is being written by process ${pid}; give each authz instance its own decision log directory, or stop that process`);
    this.name = 'DecisionLogLockedError';
  }
}

/**
 * The log ends behind a checkpoint anchored outside it: records were cut from the end, or the
 * newest file was deleted. The writer will not continue the chain over the gap.
 */
export class DecisionLogGapError extends Error {
  constructor(readonly dir: string, readonly witness: string, readonly logEndsAt: number, readonly anchoredSeq: number, detail: string) {
    super(`decision log ${dir} ${detail}. Authz will not resume a log behind its last anchored checkpoint. ` +
      `Keep the directory as evidence and run \`tollgate logs verify ${dir} --witness ${witness}\` for the report; then restore the missing ` +
      `files (from a backup, or the records from the NATS replica), or start a new log deliberately by moving both ${dir} and ${witness} aside.`);
    this.name = 'DecisionLogGapError';
  }
}

function fileIndex(name: string): number {
  const m = LOG_FILE_RE.exec(name);
  return m ? Number(m[1]) : 0;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const APPEND_FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT;

/**
 * The local decision log: append-only JSONL, one canonical-JSON record per line, hash-chained,
 * with signed checkpoints, rotated by size. This is the source of truth; other sinks replicate it.
 *
 * append() is synchronous: one write(2) on an O_APPEND descriptor, so when it returns the record
 * is in the kernel and survives kill -9 of this process. Only one process may write a directory
 * (a LOCK file holds the writer's pid).
 */
export class FileDecisionSink implements DecisionSink {
  private fd = -1;
  /** Path of the file `fd` is open on (set before its head line is written). */
  private fdPath = '';
  private file: LogFile;
  private size = 0;
  private recordsInFile = 0;
  private head: ChainHead;
  private sinceCheckpoint = 0;
  private damaged: { offset: number; bytes: number } | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly key: SigningKey;
  private readonly now: () => Date;
  private readonly warn: (m: string) => void;
  private readonly counters = { records: 0, checkpoints: 0, rotations: 0, writeErrors: 0, tampered: 0, witnessErrors: 0 };
  private witness: WitnessFile | null = null;
  private logIdValue = '';
  private refusal: string | null = null;
  private readonly listeners: CheckpointListener[] = [];
  readonly resume: ResumeReport;

  private constructor(private readonly opts: FileSinkOptions) {
    this.now = opts.now ?? (() => new Date());
    this.warn = opts.warn ?? ((m) => process.stderr.write(`tollgate decision log: ${m}\n`));
    mkdirSync(opts.dir, { recursive: true, mode: 0o750 });
    this.takeLock();
    try {
      this.key = opts.signingKey ?? loadOrCreateSigningKey(opts.signingKeyPath, this.warn);
      this.publishKey();
      if (opts.witnessPath) this.witness = WitnessFile.open(opts.witnessPath, opts.dir);
      const { file, head, report } = this.openNewest();
      this.file = file;
      this.head = head;
      this.resume = report;
    } catch (e) {
      this.witness?.close();
      if (this.fd >= 0) closeSync(this.fd);
      this.releaseLock();
      throw e;
    }
    if (opts.checkpointIntervalMs > 0) {
      this.timer = setInterval(() => this.checkpointIfDue(), opts.checkpointIntervalMs);
      this.timer.unref();
    }
  }

  static open(opts: FileSinkOptions): FileDecisionSink {
    return new FileDecisionSink(opts);
  }

  get publicJwk(): PublicJwk { return this.key.publicJwk; }

  /** Identity of this log (from its heads): what its anchors on NATS are filed under. */
  get logId(): string { return this.logIdValue; }

  /** Calls `l` after each checkpoint is written (and witnessed). */
  onCheckpoint(l: CheckpointListener): void { this.listeners.push(l); }
  get chainHead(): ChainHead { return { ...this.head }; }

  append(draft: DecisionRecordDraft): void {
    this.appendEntry(draft);
  }

  /**
   * From now on every append throws `reason` (callers refuse the call: fail closed). Used when a
   * replica finds the log behind an anchor kept elsewhere after it was opened.
   */
  refuse(reason: string): void {
    this.refusal = reason;
  }

  account(draft: AccountingRecordDraft): void {
    this.appendEntry(draft);
  }

  /** Appends and returns the record as written (for replication). Throws if it could not be written. */
  appendEntry(draft: LogEntryDraft): ChainedEntry {
    if (this.closed) throw new Error('decision log is closed');
    if (this.refusal) throw new Error(this.refusal);
    this.checkFile();
    if (this.damaged) this.rotate('recover', { file: this.file.name, ...this.damaged });
    const entry = chainRecord(draft, this.head);
    if (this.recordsInFile > 0 && this.size + entry.bytes.length > this.opts.maxFileBytes) this.rotate('rotate', null);
    this.write(entry.bytes);
    this.head = advance(entry);
    this.recordsInFile++;
    this.counters.records++;
    if (this.opts.fsync === 'always') this.sync();
    // The record is written: from here on nothing may throw, or the caller would refuse a call
    // whose record says it was decided.
    if (++this.sinceCheckpoint >= this.opts.checkpointEvery) this.checkpointIfDue();
    return entry;
  }

  /** Signs a checkpoint now if records were appended since the last one. */
  checkpointIfDue(): void {
    if (this.closed) return;
    try {
      this.checkFile();
      if (this.sinceCheckpoint === 0) return;
      this.checkpoint();
    } catch (e) {
      this.warn(`could not write a checkpoint: ${(e as Error).message}`);
    }
  }

  stats(): FileSinkStats {
    return { dir: this.opts.dir, file: this.file.name, seq: this.head.seq, ...this.counters };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.checkpointIfDue();
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    if (this.fd >= 0) {
      if (this.opts.fsync !== 'never') this.sync();
      try {
        closeSync(this.fd);
      } catch (e) {
        this.warn(`closing ${this.fdPath} failed: ${(e as Error).message}`);
      }
      this.fd = -1;
    }
    this.witness?.close();
    this.releaseLock();
  }

  /**
   * The file being written must still be the file in the directory, at least as long as what
   * was written to it: deleted or truncated under the writer, the records it held are gone from
   * the log. One fstat per append (about a microsecond). The chain continues in a new file whose
   * head names what was lost, so the loss is on record and `logs verify` reports it.
   */
  private checkFile(): void {
    if (this.fd < 0 || this.damaged) return;
    let st;
    try {
      st = fstatSync(this.fd);
    } catch {
      return;
    }
    const lost = st.nlink === 0 ? 'deleted' : st.size < this.size ? 'truncated' : null;
    if (!lost) return;
    this.counters.tampered++;
    this.warn(`TAMPERING: ${this.file.name} was ${lost} while authz was writing it (${lost === 'truncated' ? `${this.size} bytes written, ${st.size} left` : `${this.size} bytes written`}; the chain stood at seq ${this.head.seq}). ` +
      'Its records are gone from the log directory; the witness and the NATS replica (when configured) still anchor them. The chain continues in a new file whose head records the loss; `tollgate logs verify` reports it.');
    const lostInfo: NonNullable<HeadLine['lost']> = { file: this.file.name, reason: lost, bytes_written: this.size, bytes_found: lost === 'deleted' ? 0 : Number(st.size), seq: this.head.seq };
    // Nothing more goes to the lost file: no checkpoint before rotating.
    this.damaged = { offset: this.size, bytes: 0 };
    this.rotate('recover', null, lostInfo);
  }

  private write(buf: Buffer): void {
    const before = this.size;
    let off = 0;
    try {
      while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off);
    } catch (e) {
      this.counters.writeErrors++;
      if (off > 0) {
        // Part of the line is in the file: the next append starts a new file rather than
        // gluing a record to the fragment.
        this.damaged = { offset: before, bytes: off };
        this.size += off;
      }
      throw new Error(`cannot write to decision log ${this.fdPath}: ${(e as Error).message}`);
    }
    this.size += buf.length;
  }

  private sync(): void {
    try {
      fdatasyncSync(this.fd);
    } catch (e) {
      this.counters.writeErrors++;
      this.warn(`fdatasync of ${this.fdPath} failed: ${(e as Error).message}`);
    }
  }

  private checkpoint(): void {
    const line = signCheckpoint(checkpointPayload(this.head, this.now()), this.key);
    const offset = this.size;
    this.write(Buffer.from(canonicalize(line) + '\n', 'utf8'));
    this.sinceCheckpoint = 0;
    this.counters.checkpoints++;
    if (this.opts.fsync !== 'never') this.sync();
    // Anchored after the log has it: a witness entry never names a checkpoint the log lacks.
    if (this.witness) {
      try {
        this.witness.append(this.file.name, offset, line);
      } catch (e) {
        this.counters.witnessErrors++;
        this.warn(`could not copy checkpoint seq ${line.seq} to the witness ${this.witness.path}: ${(e as Error).message}`);
      }
    }
    for (const l of this.listeners) {
      try {
        l({ file: this.file.name, offset, checkpoint: line });
      } catch (e) {
        this.warn(`checkpoint listener failed: ${(e as Error).message}`);
      }
    }
  }

  private rotate(reason: HeadReason, torn: HeadLine['torn'], lost: HeadLine['lost'] = null): void {
    if (this.sinceCheckpoint > 0 && !this.damaged) this.checkpoint();
    const prev = this.file;
    if (this.fd >= 0) {
      if (this.opts.fsync !== 'never') {
        try { fdatasyncSync(this.fd); } catch { /* the old file is done either way */ }
      }
      closeSync(this.fd);
      this.fd = -1;
    }
    this.file = this.startFile(prev.index + 1, prev.name, reason, torn, lost);
    this.damaged = null;
    this.counters.rotations++;
  }

  /** Creates a file and writes its head line. */
  private startFile(index: number, prevName: string | null, reason: HeadReason, torn: HeadLine['torn'], lost: HeadLine['lost'] = null): LogFile {
    const name = logFileName(index);
    const path = join(this.opts.dir, name);
    this.fd = openSync(path, APPEND_FLAGS, 0o640);
    this.fdPath = path;
    this.size = fdSize(this.fd);
    this.recordsInFile = 0;
    const head: HeadLine = {
      type: 'head', schema: HEAD_SCHEMA, file: name, next_seq: this.head.seq + 1, prev_hash: this.head.hash,
      prev_file: prevName, reason, timestamp: this.now().toISOString(), torn,
      ...(lost ? { lost } : {}), log_id: this.logIdValue,
    };
    this.write(Buffer.from(canonicalize(head) + '\n', 'utf8'));
    return { name, path, index };
  }

  /** Finds where the chain stands and opens the file to append to. */
  private openNewest(): { file: LogFile; head: ChainHead; report: ResumeReport } {
    const files = listLogFiles(this.opts.dir);
    const corrupt: string[] = [];
    const newest = files[files.length - 1];
    this.logIdValue = this.findLogId(files) ?? randomUUID();
    if (!newest) {
      this.checkAnchor(GENESIS, files);
      this.head = GENESIS;
      const file = this.startFile(1, null, 'genesis', null);
      return { file, head: GENESIS, report: { file: file.name, seq: 0, reason: 'genesis', torn: null, corrupt } };
    }
    // Newest file first; an empty or headless newest file (crash during rotation) defers to the one before.
    let found: { head: ChainHead; records: boolean } | null = null;
    let newestTorn: FileTail['torn'] = null;
    for (let i = files.length - 1; i >= 0 && !found; i--) {
      const f = files[i]!;
      const tail = readTail(f.path);
      if (i === files.length - 1) newestTorn = tail.torn;
      found = this.chainStateOf(f, tail, corrupt);
    }
    const head = found?.head ?? GENESIS;
    // Before anything is written: a refused log stays exactly as it was found.
    this.checkAnchor(head, files);
    this.head = head;
    const newestSize = readTail(newest.path).size;

    if (newestTorn) {
      this.warn(`${newest.name} ends with an incomplete line (${newestTorn.bytes} bytes at offset ${newestTorn.offset}): a write was cut off, probably by a crash. The chain continues from seq ${head.seq} in a new file; \`tollgate logs verify\` reports the torn line.`);
      const torn = { file: newest.name, ...newestTorn };
      const file = this.startFile(newest.index + 1, newest.name, 'recover', torn);
      return { file, head, report: { file: file.name, seq: head.seq, reason: 'recover', torn, corrupt } };
    }
    if (corrupt.length > 0) {
      this.warn(`unexpected lines at the end of ${newest.name}: ${corrupt.join('; ')}. The chain continues from seq ${head.seq} in a new file.`);
      const file = this.startFile(newest.index + 1, newest.name, 'recover', null);
      return { file, head, report: { file: file.name, seq: head.seq, reason: 'recover', torn: null, corrupt } };
    }
    if (newestSize === 0) {
      // Created by a rotation that crashed before its head line: finish the job in place.
      const prev = files[files.length - 2]?.name ?? null;
      const file = this.startFile(newest.index, prev, prev ? 'rotate' : 'genesis', null);
      return { file, head, report: { file: file.name, seq: head.seq, reason: prev ? 'rotate' : 'genesis', torn: null, corrupt } };
    }
    this.fd = openSync(newest.path, APPEND_FLAGS, 0o640);
    this.fdPath = newest.path;
    this.size = fdSize(this.fd);
    this.recordsInFile = found?.records ? 1 : 0;
    return { file: newest, head, report: { file: newest.name, seq: head.seq, reason: 'resumed', torn: null, corrupt } };
  }

  /** The log id in the newest head that has one. */
  private findLogId(files: LogFile[]): string | null {
    for (let i = files.length - 1; i >= 0; i--) {
      const first = readLines(files[i]!.path).next();
      if (first.done || !first.value.complete) continue;
      const p = parseLine(first.value.text);
      if (p.kind === 'head' && typeof p.head.log_id === 'string' && p.head.log_id.length > 0) return p.head.log_id;
    }
    return null;
  }

  /**
   * The log must reach the witness's last checkpoint: that checkpoint's seq, with the same hash,
   * and its line still where it was written (unless its file was retired as an old file).
   */
  private checkAnchor(head: ChainHead, files: LogFile[]): void {
    const w = this.witness;
    const last = w?.last();
    if (!w || !last) return;
    const ck = last.checkpoint;
    const ends = files.length === 0 ? 'has no log files' : `ends at seq ${head.seq} (${files[files.length - 1]!.name})`;
    const anchored = `the witness ${w.path} holds the signed checkpoint for seq ${ck.seq}, written to ${last.file} at byte ${last.offset} on ${ck.timestamp}`;
    const fail = (detail: string): never => { throw new DecisionLogGapError(this.opts.dir, w.path, head.seq, ck.seq, detail); };
    if (ck.seq > head.seq) {
      const missingFile = !files.some((f) => f.name === last.file) ? `; ${last.file} is missing (the newest file was deleted)` : '';
      fail(`${ends}, but ${anchored}: ${ck.seq - head.seq} record(s), seq ${head.seq + 1}..${ck.seq}, were removed from the end of the log${missingFile}`);
    }
    if (ck.seq === head.seq && ck.hash !== head.hash) fail(`${ends} with a record whose hash differs from the one ${anchored}: the end of the log was rewritten`);
    const newestIndex = files.length > 0 ? files[files.length - 1]!.index : 0;
    const present = files.some((f) => f.name === last.file);
    if (!present && fileIndex(last.file) >= newestIndex) fail(`${ends}, but ${anchored}, and that file is missing`);
    if (present && lineAt(join(this.opts.dir, last.file), last.offset) !== canonicalize(ck)) {
      fail(`${ends}, but ${anchored}, and that line is no longer there: the file was rewritten`);
    }
  }

  /** The chain state at the end of a file, from its last record or else its head line. */
  private chainStateOf(f: LogFile, tail: FileTail, corrupt: string[]): { head: ChainHead; records: boolean } | null {
    for (const line of tail.lines()) {
      const p = parseLine(line.text);
      const r = chained(p);
      if (r) return { head: { seq: r.seq, hash: recordHash(r) }, records: true };
      if (p.kind === 'head') return { head: { seq: p.head.next_seq - 1, hash: p.head.prev_hash }, records: false };
      if (p.kind === 'invalid') corrupt.push(`${f.name} offset ${line.offset}: ${p.problem}`);
    }
    return null;
  }

  private publishKey(): void {
    const path = join(this.opts.dir, PUBLIC_KEYS_FILE);
    let keys: PublicJwk[] = [];
    try {
      const doc = JSON.parse(readFileSync(path, 'utf8')) as { keys?: PublicJwk[] };
      keys = Array.isArray(doc.keys) ? doc.keys : [];
    } catch { /* absent or unreadable: rewritten below */ }
    if (keys.some((k) => k.kid === this.key.kid)) return;
    // Older keys stay listed: checkpoints they signed must remain verifiable.
    keys.push(this.key.publicJwk);
    writeFileSync(path, JSON.stringify({ keys }, null, 2) + '\n', { mode: 0o644 });
  }

  /** Directories written by this process: the pid in LOCK cannot tell two of our own sinks apart. */
  private static readonly openDirs = new Set<string>();

  private takeLock(): void {
    const dirKey = realpathSync(this.opts.dir);
    if (FileDecisionSink.openDirs.has(dirKey)) throw new DecisionLogLockedError(this.opts.dir, process.pid);
    const path = join(this.opts.dir, LOCK_FILE);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        writeFileSync(path, String(process.pid), { flag: 'wx', mode: 0o644 });
        FileDecisionSink.openDirs.add(dirKey);
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const pid = Number(readFileSync(path, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) throw new DecisionLogLockedError(this.opts.dir, pid);
      // The writer that held it is gone (crash or kill -9): the lock is stale.
      unlinkSync(path);
    }
    throw new Error(`cannot take the lock ${path}`);
  }

  private releaseLock(): void {
    try { FileDecisionSink.openDirs.delete(realpathSync(this.opts.dir)); } catch { /* directory removed */ }
    const path = join(this.opts.dir, LOCK_FILE);
    try {
      if (readFileSync(path, 'utf8').trim() === String(process.pid)) unlinkSync(path);
    } catch { /* already gone */ }
  }
}
