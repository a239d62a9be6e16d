import { mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DiscardPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType, type JetStreamClient } from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import type { NatsLink } from '../nats/connect.js';
import { placedIn } from '../nats/placement.js';
import type { ChainedEntry } from './chain.js';
import { chained, parseLine } from './lines.js';
import { EntryCursor } from './reader.js';
import { Spool } from './spool.js';
import type { ChainedDecisionRecord, ChainedLogEntry, CheckpointLine } from './types.js';
import { canonicalize } from './canonical.js';
import { WITNESS_SCHEMA, type WitnessEntry } from './witness.js';

/**
 * Replication of the decision log to a NATS JetStream stream. The local file is the source of
 * truth; this copy is what a central team queries across instances.
 *
 * offer() never waits on NATS: it hands the record to an in-memory queue (while NATS answers) or
 * appends it to a disk spool (while it does not). A single publisher sends records one at a time,
 * in seq order, each with an ack and a message id (`<decision_id>:<seq>`) that JetStream uses to
 * drop re-sends within its duplicate window; a record is taken off the queue only once acked.
 * Sending one at a time is what keeps the stream in order when a publish fails while a later one
 * would have succeeded.
 *
 * When the spool is full, records are not dropped: they are counted, logged, and read back from
 * the local decision log once the spool has drained (the same catch-up runs at startup for
 * records that were written but not yet acked when the process died).
 */

export interface NatsReplicaOptions {
  /** The process's NATS connection. */
  link: NatsLink;
  /** Close the link with the replica (a link opened for the replica alone). */
  ownsLink?: boolean;
  /** JetStream stream; created (file storage, limits retention) if missing. */
  stream: string;
  /** Subjects are `<prefix>.<namespace>.<server>[.<writer>]`. */
  subjectPrefix: string;
  /**
   * This writer's subject token (from its NATS identity, see nats/identity.ts); the server lets
   * a writer publish under its own token only. null: no token (a NATS without per-component users).
   */
  writer: string | null;
  /** Spool and replication state. */
  queueDir: string;
  /** Cap of the spool file; when full, later records are read back from the local log instead. */
  queueMaxBytes: number;
  /** Records held in memory while NATS answers; beyond this they go to the spool. */
  memoryMaxRecords: number;
  /** Wait this long for a publish ack before retrying. */
  publishTimeoutMs: number;
  /** Stream duplicate window (only used when this creates the stream). */
  duplicateWindowMs: number;
  /** Stream max age, 0 = keep forever (only used when this creates the stream). */
  maxAgeMs: number;
  /** The local decision log, read back for catch-up; null disables catch-up. */
  localLogDir: string | null;
  warn: (message: string) => void;
  /**
   * The log's id (its heads' log_id): checkpoints are anchored on `<prefix>._anchors.<logId>`.
   * Unset: no anchoring.
   */
  logId?: string;
  /**
   * Called once if the stream holds an anchor beyond where the local log ended when it was
   * opened: records were cut from the local log (or its newest file deleted).
   */
  onGap?: (message: string) => void;
  /** Called with each record's seq once JetStream acknowledged it (metrics, load tools). */
  onAcked?: (seq: number) => void;
}

/** A checkpoint as the writer reports it, to be anchored in the stream. */
export interface AnchorOffer {
  file: string;
  offset: number;
  checkpoint: CheckpointLine;
}

/**
 * Subject of a log's checkpoint anchors (a namespace never starts with "_": no clash with records).
 * With a NATS identity the writer's token ends it, so the writer's decision-subject permission
 * (`<prefix>.*.*.<writer>`) covers its anchors and no other writer can anchor this log.
 */
export function anchorSubject(prefix: string, logId: string, writer: string | null = null): string {
  return `${prefix}._anchors.${subjectToken(logId)}${writer ? `.${writer}` : ''}`;
}

export interface NatsReplicaStats {
  connected: boolean;
  healthy: boolean;
  published: number;
  duplicates: number;
  failures: number;
  /** Records waiting in memory. */
  queued: number;
  /** Bytes waiting in the spool. */
  spooledBytes: number;
  /** Records the full spool could not take, replicated later from the local log. */
  deferred: number;
  /** Records neither queued nor recoverable (spool full and no local log to read back). */
  dropped: number;
  /** Seq from which records are being read back from the local log, if catching up. */
  catchingUpFrom: number | null;
  ackedSeq: number;
  lastError: string | null;
}

/** A subject token: no dots, wildcards or whitespace. */
export function subjectToken(s: string): string {
  const t = s.replace(/[\s.*>]+/g, '_');
  return t.length > 0 ? t : '_';
}

export function decisionSubject(prefix: string, namespace: string, server: string, writer: string | null = null): string {
  const base = `${prefix}.${subjectToken(namespace)}.${subjectToken(server)}`;
  return writer === null ? base : `${base}.${writer}`;
}

export interface DecisionStreamSettings {
  stream: string;
  subjectPrefix: string;
  duplicateWindowMs: number;
  maxAgeMs: number;
  /** Stream replicas when this creates it (default 1). */
  replicas?: number;
  /** Region (NATS cluster of a supercluster) the stream is placed in when this creates it. */
  region?: string | null;
}

/** Creates the decision stream if it does not exist; warns when an existing one misses our subjects. */
export async function ensureDecisionStream(nc: NatsConnection, o: DecisionStreamSettings, warn: (m: string) => void): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const wanted = `${o.subjectPrefix}.>`;
  try {
    const info = await jsm.streams.info(o.stream);
    if (!info.config.subjects?.some((s) => s === wanted || s === '>' || s === `${o.subjectPrefix.split('.')[0]}.>`)) {
      warn(`NATS stream ${o.stream} exists but does not list subject ${wanted} (it has ${JSON.stringify(info.config.subjects)}); add it, or set nats.subjectPrefix to one it covers`);
    }
    return;
  } catch (e) {
    if (!/not found|10059/i.test((e as Error).message)) throw e;
  }
  await jsm.streams.add({
    name: o.stream, subjects: [wanted], storage: StorageType.File, retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old, duplicate_window: nanos(o.duplicateWindowMs), max_age: nanos(o.maxAgeMs),
    num_replicas: o.replicas ?? 1, description: 'Tollgate decision records (hash-chained; see docs/decision-log.md)', ...placedIn(o.region),
  });
}

export function decisionMsgId(r: Pick<ChainedDecisionRecord, 'decision_id' | 'seq'>): string {
  return `${r.decision_id}:${r.seq}`;
}

interface Outgoing {
  seq: number;
  subject: string;
  msgId: string;
  data: string;
  source: 'memory' | 'spool' | 'log';
  spoolEnd: number;
}

interface SavedState {
  acked: number;
  log: string | null;
}

const STATE_FILE = 'replication.json';
const BATCH = 256;

export class NatsReplica {
  private nc: NatsConnection | null = null;
  private js: JetStreamClient | null = null;
  private connected = false;
  private healthy = false;
  private readonly memory: Outgoing[] = [];
  private spoolBuf: Outgoing[] = [];
  private logBuf: Outgoing[] = [];
  private cursor: EntryCursor | null = null;
  private deferredFrom: number | null = null;
  private lastOffered: number;
  private acked: number;
  private ackedSaved: number;
  private ackedSavedAt = 0;
  private stopping = false;
  private deadline = Infinity;
  private wakeUp: (() => void) | null = null;
  private outage: { since: number; warned: boolean } | null = null;
  private overflow: { from: number; count: number } | null = null;
  private readonly loopDone: Promise<void>;
  private readonly drainWaiters: Array<() => void> = [];
  private readonly counters = { published: 0, duplicates: 0, failures: 0, deferred: 0, dropped: 0 };
  private lastError: string | null = null;
  private anchorWaiting: AnchorOffer | null = null;
  private anchorChecked = false;
  private readonly openedAt: number;
  private readonly spool: Spool;
  private readonly statePath: string;
  private readonly logId: string | null;

  /** `headSeq`: where the local log stands now (records up to it exist locally). */
  constructor(private readonly opts: NatsReplicaOptions, headSeq: number) {
    mkdirSync(opts.queueDir, { recursive: true, mode: 0o750 });
    this.statePath = join(opts.queueDir, STATE_FILE);
    this.spool = Spool.open(opts.queueDir, opts.queueMaxBytes, opts.warn);
    this.lastOffered = headSeq;
    this.openedAt = headSeq;
    this.logId = opts.localLogDir ? realpathSync(opts.localLogDir) : null;
    const saved = this.loadState();
    // First start with NATS configured (or with another log): replicate from now on, not history.
    this.acked = saved && saved.log === this.logId ? Math.min(saved.acked, headSeq) : headSeq;
    this.ackedSaved = this.acked;
    this.recoverGaps(headSeq);
    this.saveState(true);
    this.loopDone = this.run().catch((e: Error) => opts.warn(`NATS replication stopped: ${e.message}`));
    this.connectLoop().catch((e: Error) => opts.warn(`NATS replication cannot connect: ${e.message}`));
  }

  /** Queues a record that is already in the local log. Never throws, never waits. */
  offer(entry: ChainedEntry): void {
    const seq = entry.record.seq;
    this.lastOffered = seq;
    if (this.deferredFrom !== null) {
      this.counters.deferred++;
      return;
    }
    const direct = this.healthy && this.spool.empty && this.spoolBuf.length === 0 && this.memory.length < this.opts.memoryMaxRecords;
    if (direct) {
      this.memory.push(this.outgoing(entry.record, entry.line, 'memory', 0));
    } else if (!this.spool.push(entry.line)) {
      this.spoolFull(seq);
    }
    this.wake();
  }

  /**
   * Anchors a checkpoint in the stream (latest wins while NATS is away). Sent once the records it
   * covers are acked, so the stream never anchors records it does not hold.
   */
  anchor(a: AnchorOffer): void {
    if (!this.opts.logId) return;
    this.anchorWaiting = a;
    this.wake();
  }

  stats(): NatsReplicaStats {
    return {
      connected: this.connected, healthy: this.healthy, ...this.counters, queued: this.memory.length,
      spooledBytes: this.spool.pendingBytes, catchingUpFrom: this.deferredFrom, ackedSeq: this.acked, lastError: this.lastError,
    };
  }

  /** Resolves once everything offered so far is acked by NATS (tests, graceful shutdown). */
  drained(): Promise<void> {
    if (!this.pending()) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /**
   * Stops: keeps publishing for up to `timeoutMs`, then leaves what is left in the spool (in order)
   * for the next start, and closes the connection.
   */
  async close(timeoutMs = 5000): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.deadline = Date.now() + timeoutMs;
    this.wake();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.loopDone, new Promise<void>((r) => { timer = setTimeout(r, timeoutMs + 100); })]);
    clearTimeout(timer);
    // Records held in memory are older than anything spooled: they go in front.
    this.spool.prepend(this.memory.splice(0).map((o) => o.data));
    this.saveState(true);
    this.spool.close();
    this.nc = null;
    this.js = null;
    if (this.opts.ownsLink) await this.opts.link.close();
  }

  private outgoing(r: ChainedLogEntry, line: string, source: Outgoing['source'], spoolEnd: number): Outgoing {
    return { seq: r.seq, subject: decisionSubject(this.opts.subjectPrefix, r.mcp.namespace, r.mcp.server, this.opts.writer), msgId: decisionMsgId(r), data: line, source, spoolEnd };
  }

  private spoolFull(seq: number): void {
    if (this.opts.localLogDir) {
      this.deferredFrom = seq;
      this.counters.deferred++;
      this.opts.warn(`NATS replication: the spool in ${this.opts.queueDir} is full (queueMaxBytes ${this.opts.queueMaxBytes}); records from seq ${seq} on will be read back from the local decision log once NATS has caught up. Nothing is lost while the local log is kept.`);
      return;
    }
    this.counters.dropped++;
    if (!this.overflow) {
      this.overflow = { from: seq, count: 0 };
      this.opts.warn(`NATS replication: the spool in ${this.opts.queueDir} is full (queueMaxBytes ${this.opts.queueMaxBytes}) and there is no local log to read back: records from seq ${seq} on are NOT replicated (they are only in the local decision log). Raise queueMaxBytes or restore NATS.`);
    }
    this.overflow.count++;
  }

  /**
   * At start: records between the last acked one and what the spool holds (lost from memory by a
   * crash) go in front of the spool; records after the spool are caught up from the local log.
   */
  private recoverGaps(headSeq: number): void {
    const ends = this.spool.ends();
    const firstSpooled = ends ? this.seqOf(ends.first) : null;
    const lastSpooled = ends ? this.seqOf(ends.last) : null;
    if (!this.opts.localLogDir) return;
    if (firstSpooled !== null && firstSpooled > this.acked + 1) {
      const cursor = new EntryCursor(this.opts.localLogDir, this.acked + 1);
      const lines: string[] = [];
      for (let got = cursor.read(BATCH); got.length > 0; got = cursor.read(BATCH)) {
        for (const r of got) if (r.record.seq < firstSpooled) lines.push(r.line);
        if (got[got.length - 1]!.record.seq >= firstSpooled - 1) break;
      }
      this.spool.prepend(lines);
    }
    const covered = Math.max(this.acked, lastSpooled ?? 0);
    if (covered < headSeq) this.deferredFrom = covered + 1;
  }

  private seqOf(line: string): number | null {
    return chained(parseLine(line))?.seq ?? null;
  }

  private pending(): boolean {
    return this.memory.length > 0 || this.spoolBuf.length > 0 || !this.spool.empty || this.logBuf.length > 0 || this.deferredFrom !== null;
  }

  /** The oldest record not yet acked, from memory, then the spool, then the local log. */
  private next(): Outgoing | null {
    if (this.memory.length > 0) return this.memory[0]!;
    if (this.spoolBuf.length === 0 && !this.spool.empty) {
      for (const item of this.spool.peek(BATCH)) {
        const r = chained(parseLine(item.line));
        if (r) this.spoolBuf.push(this.outgoing(r, item.line, 'spool', item.end));
        else this.spool.commit(item.end); // not a record: nothing to send
      }
      if (this.spoolBuf.length === 0) return this.next();
    }
    if (this.spoolBuf.length > 0) return this.spoolBuf[0]!;
    if (this.deferredFrom !== null && this.opts.localLogDir) {
      this.cursor ??= new EntryCursor(this.opts.localLogDir, this.deferredFrom);
      if (this.logBuf.length === 0) this.logBuf = this.cursor.read(BATCH).map((r) => this.outgoing(r.record, r.line, 'log', 0));
      if (this.logBuf.length > 0) return this.logBuf[0]!;
      if (this.cursor.position > this.lastOffered) {
        // Caught up with the live log: new records queue normally again.
        if (this.overflow === null) this.opts.warn(`NATS replication caught up from the local decision log (through seq ${this.lastOffered})`);
        this.deferredFrom = null;
        this.cursor = null;
      }
    }
    return null;
  }

  private consume(o: Outgoing): void {
    if (o.source === 'memory') this.memory.shift();
    else if (o.source === 'spool') {
      this.spoolBuf.shift();
      this.spool.commit(o.spoolEnd);
    } else this.logBuf.shift();
    if (o.seq > this.acked) this.acked = o.seq;
    this.opts.onAcked?.(o.seq);
    this.saveState(false);
    if (!this.pending()) {
      if (this.overflow) {
        this.opts.warn(`NATS replication: ${this.overflow.count} records from seq ${this.overflow.from} were not replicated because the spool was full; they are in the local decision log`);
        this.overflow = null;
      }
      for (const w of this.drainWaiters.splice(0)) w();
    }
  }

  private async run(): Promise<void> {
    let backoff = 100;
    for (;;) {
      // The last checkpoint's anchor (written at close) goes out before stopping too.
      const anchorDue = this.anchorWaiting !== null && this.anchorWaiting.checkpoint.seq <= this.acked;
      if (this.stopping && ((!this.pending() && !anchorDue) || Date.now() >= this.deadline)) return;
      const js = this.js;
      let item: Outgoing | null = null;
      try {
        item = js ? this.next() : null;
      } catch (e) {
        // Reading the spool or the local log failed (disk error, file removed): retry later.
        this.lastError = (e as Error).message;
        this.opts.warn(`NATS replication: cannot read queued records: ${(e as Error).message}`);
        await this.idle(2000);
        continue;
      }
      if (js && !item && this.anchorWaiting && this.anchorWaiting.checkpoint.seq <= this.acked) {
        await this.publishAnchor(js, this.anchorWaiting);
        continue;
      }
      if (!js || !item) {
        if (js && !this.pending()) for (const w of this.drainWaiters.splice(0)) w();
        await this.idle(js ? 1000 : 200);
        continue;
      }
      try {
        const ack = await js.publish(item.subject, item.data, { msgID: item.msgId, timeout: this.opts.publishTimeoutMs });
        if (ack.duplicate) this.counters.duplicates++;
        else this.counters.published++;
        this.consume(item);
        backoff = 100;
        if (!this.healthy) this.recovered();
      } catch (e) {
        this.failed(e as Error);
        if (/no responders|stream not found|10059/i.test((e as Error).message)) await this.ensureStream().catch(() => undefined);
        await this.idle(backoff);
        backoff = Math.min(backoff * 2, 2000);
      }
    }
  }

  private async publishAnchor(js: JetStreamClient, a: AnchorOffer): Promise<void> {
    const entry: WitnessEntry = { type: 'witness', schema: WITNESS_SCHEMA, log: this.opts.localLogDir ?? '', file: a.file, offset: a.offset, checkpoint: a.checkpoint };
    try {
      await js.publish(anchorSubject(this.opts.subjectPrefix, this.opts.logId!, this.opts.writer ?? null), canonicalize(entry), {
        msgID: `anchor:${this.opts.logId}:${a.checkpoint.seq}`, timeout: this.opts.publishTimeoutMs,
      });
      if (this.anchorWaiting === a) this.anchorWaiting = null;
    } catch (e) {
      this.failed(e as Error);
      await this.idle(500);
    }
  }

  /**
   * Once per start, when NATS first answers: the last anchor of this log must not be beyond
   * where the local log ended when it was opened.
   */
  private async checkAnchor(): Promise<void> {
    if (this.anchorChecked || !this.opts.logId || !this.nc) return;
    const jsm = await jetstreamManager(this.nc);
    const subject = anchorSubject(this.opts.subjectPrefix, this.opts.logId, this.opts.writer ?? null);
    let data: string | null = null;
    try {
      const m = await jsm.streams.getMessage(this.opts.stream, { last_by_subj: subject });
      data = m ? new TextDecoder().decode(m.data) : null;
    } catch (e) {
      if (!/no message found|not found|10037/i.test((e as Error).message)) throw e;
    }
    this.anchorChecked = true;
    if (data === null) return;
    let entry: Partial<WitnessEntry>;
    try {
      entry = JSON.parse(data) as Partial<WitnessEntry>;
    } catch {
      this.opts.warn(`NATS anchor on ${subject} is not JSON; ignored`);
      return;
    }
    const seq = entry.checkpoint?.seq;
    if (typeof seq === 'number' && seq > this.openedAt) {
      const msg = `decision log ${this.opts.localLogDir ?? ''} ended at seq ${this.openedAt} when it was opened, but the NATS stream ${this.opts.stream} holds the signed checkpoint for seq ${seq} (${subject}, written to ${entry.file} on ${entry.checkpoint?.timestamp}): ` +
        `records ${this.openedAt + 1}..${seq} were removed from the local log. Authz will not resume a log behind its last anchored checkpoint: every call is refused until this is resolved. ` +
        'Keep the directory as evidence, compare it with the stream (`tollgate logs query --nats`), restore the missing records, or start a new log deliberately.';
      this.opts.warn(msg);
      this.opts.onGap?.(msg);
    }
  }

  private failed(e: Error): void {
    this.counters.failures++;
    this.lastError = e.message;
    this.healthy = false;
    if (!this.outage) this.outage = { since: Date.now(), warned: false };
    if (!this.outage.warned) {
      this.outage.warned = true;
      this.opts.warn(`NATS replication: cannot publish to stream ${this.opts.stream} at ${this.opts.link.settings.servers.join(',')} (${e.message}); records queue in ${this.opts.queueDir} and are sent in order when it is back`);
    }
  }

  private recovered(): void {
    this.healthy = true;
    if (this.outage?.warned) {
      this.opts.warn(`NATS replication resumed after ${Math.round((Date.now() - this.outage.since) / 1000)} s; sending queued records`);
    }
    this.outage = null;
  }

  private async connectLoop(): Promise<void> {
    let delay = 200;
    while (!this.stopping && !this.nc) {
      try {
        const nc = await this.opts.link.ready(2000);
        if (this.stopping) return;
        this.nc = nc;
        this.connected = true;
        this.watch(nc).catch(() => undefined);
      } catch (e) {
        this.failed(e as Error);
        await this.idle(delay);
        delay = Math.min(delay * 2, 5000);
      }
    }
    while (!this.stopping && this.nc) {
      try {
        await this.ensureStream();
        await this.checkAnchor();
        this.js = jetstream(this.nc);
        this.recovered();
        this.wake();
        return;
      } catch (e) {
        this.failed(e as Error);
        await this.idle(delay);
        delay = Math.min(delay * 2, 5000);
      }
    }
  }

  private async watch(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') {
        this.connected = false;
        // New records go to disk from now on; the publisher finds out on its next attempt.
        this.healthy = false;
      } else if (s.type === 'reconnect') {
        this.connected = true;
        this.wake();
      }
    }
  }

  private async ensureStream(): Promise<void> {
    if (!this.nc) throw new Error('not connected');
    await ensureDecisionStream(this.nc, this.opts, this.opts.warn);
  }

  private wake(): void {
    const w = this.wakeUp;
    this.wakeUp = null;
    w?.();
  }

  private idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        if (this.wakeUp === done) this.wakeUp = null;
        resolve();
      };
      const t = setTimeout(done, ms);
      this.wakeUp = done;
    });
  }

  private loadState(): SavedState | null {
    try {
      const s = JSON.parse(readFileSync(this.statePath, 'utf8')) as Partial<SavedState>;
      return typeof s.acked === 'number' ? { acked: s.acked, log: typeof s.log === 'string' ? s.log : null } : null;
    } catch {
      return null;
    }
  }

  /** Saved every 200 acks or second: after a crash, re-sends are de-duplicated by message id. */
  private saveState(force: boolean): void {
    const now = Date.now();
    if (!force && this.acked - this.ackedSaved < 200 && now - this.ackedSavedAt < 1000) return;
    const state: SavedState = { acked: this.acked, log: this.logId };
    try {
      writeFileSync(this.statePath, JSON.stringify(state) + '\n');
      this.ackedSaved = this.acked;
      this.ackedSavedAt = now;
    } catch (e) {
      this.opts.warn(`NATS replication: cannot save ${this.statePath}: ${(e as Error).message}`);
    }
  }
}
