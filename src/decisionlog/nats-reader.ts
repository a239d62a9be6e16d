import { DeliverPolicy, jetstream, jetstreamManager, type OrderedConsumerOptions } from '@nats-io/jetstream';
import { NatsLink } from '../nats/connect.js';
import { parseServers } from '../nats/settings.js';
import { chained, entryShapeProblem, parseLine, type SkippedLines } from './lines.js';
import { subjectToken } from './nats-sink.js';
import { isAccounting, type ChainedDecisionRecord, type ChainedLogEntry } from './types.js';

/** Reads decision records back from the JetStream stream (`tollgate logs query|tail|stats --nats`). */

export interface StreamReadOptions {
  /** Servers to connect to without TLS, when no link is given. */
  url?: string;
  /** A connection with the reader's credential (kept open). */
  link?: NatsLink;
  stream: string;
  subjectPrefix: string;
  /** Narrow to one namespace and/or server (uses the subject, so the server filters). */
  namespace?: string | null;
  server?: string | null;
  /** Start at this time (the stream's store time) instead of the beginning. */
  since?: Date | null;
  /** Only the last N messages (tail), when since is not given. */
  last?: number | null;
  /** Keep reading new messages until the signal aborts. */
  follow?: boolean;
  signal?: AbortSignal;
  /**
   * Records whose fields readers cannot use (entryShapeProblem) are skipped, and counted here.
   * Messages that are no record are passed over silently: the log's anchors share its subjects.
   */
  skipped?: SkippedLines;
}

export interface StreamEntry {
  record: ChainedLogEntry;
  line: string;
  subject: string;
  streamSeq: number;
  msgId: string | null;
}

export interface StreamRecord {
  record: ChainedDecisionRecord;
  line: string;
  subject: string;
  streamSeq: number;
  msgId: string | null;
}

/** Subjects of the selected records: with and without the writer token (nats-sink.ts decisionSubject). */
export function streamFilter(o: Pick<StreamReadOptions, 'subjectPrefix' | 'namespace' | 'server'>): string[] {
  const ns = o.namespace ? subjectToken(o.namespace) : '*';
  const server = o.server ? subjectToken(o.server) : '*';
  const base = `${o.subjectPrefix}.${ns}.${server}`;
  return [base, `${base}.*`];
}

/** Decision records of the stream (accounting records left out). */
export async function* readStreamRecords(o: StreamReadOptions): AsyncGenerator<StreamRecord> {
  for await (const e of readStreamEntries(o)) if (!isAccounting(e.record)) yield e as StreamRecord;
}

/** Decisions and accounting records of the stream, in stream order. */
export async function* readStreamEntries(o: StreamReadOptions): AsyncGenerator<StreamEntry> {
  if (!o.link && !o.url) throw new Error('reading the decision stream needs a NATS URL');
  const link = o.link ?? NatsLink.open({ servers: parseServers(o.url!, '--nats'), tls: null }, { name: 'tollgate-logs' });
  try {
    const nc = await link.ready(5000);
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(o.stream);
    const lastSeq = info.state.last_seq;
    const opts: Partial<OrderedConsumerOptions> = { filter_subjects: streamFilter(o) };
    if (o.since) {
      opts.deliver_policy = DeliverPolicy.StartTime;
      opts.opt_start_time = o.since.toISOString();
    } else if (o.last && o.last > 0) {
      opts.deliver_policy = DeliverPolicy.StartSequence;
      opts.opt_start_seq = Math.max(1, lastSeq - o.last + 1);
    } else if (o.follow && o.last === 0) {
      // From the sequence after the current last, not "new": nothing written while the consumer is
      // being created is missed.
      opts.deliver_policy = DeliverPolicy.StartSequence;
      opts.opt_start_seq = lastSeq + 1;
    }
    const consumer = await jetstream(nc).consumers.get(o.stream, opts);
    const toRecord = (m: { data: Uint8Array; subject: string; info: { streamSequence: number }; headers?: { get(k: string): string } }): StreamEntry | null => {
      const line = new TextDecoder().decode(m.data);
      const r = chained(parseLine(line));
      if (!r) return null;
      const problem = entryShapeProblem(r);
      if (problem !== null) {
        o.skipped?.note('malformed', { where: `stream ${o.stream} seq ${m.info.streamSequence}`, problem }, r.seq);
        return null;
      }
      return { record: r, line, subject: m.subject, streamSeq: m.info.streamSequence, msgId: m.headers?.get('Nats-Msg-Id') || null };
    };

    if (o.follow) {
      const messages = await consumer.consume();
      const stop = (): void => { void messages.close(); };
      o.signal?.addEventListener('abort', stop, { once: true });
      try {
        for await (const m of messages) {
          const r = toRecord(m);
          if (r) yield r;
          if (o.signal?.aborted) break;
        }
      } finally {
        o.signal?.removeEventListener('abort', stop);
        await messages.close();
      }
      return;
    }

    if (lastSeq === 0) return;
    for (;;) {
      const batch = await consumer.fetch({ max_messages: 1000, expires: 2000 });
      let got = 0;
      let done = false;
      for await (const m of batch) {
        got++;
        const r = toRecord(m);
        if (r) yield r;
        if (m.info.pending === 0 || m.info.streamSequence >= lastSeq) {
          // Everything there was at the start has been read: do not wait out the fetch's expiry.
          done = true;
          break;
        }
      }
      if (done || got === 0 || o.signal?.aborted) return;
    }
  } finally {
    if (!o.link) await link.close();
  }
}
