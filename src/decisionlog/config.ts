import { dirname, join, resolve, sep } from 'node:path';
import { FileDecisionSink, type FileSinkOptions, type FsyncPolicy } from './file-sink.js';
import type { NatsReplicaOptions } from './nats-sink.js';
import type { NatsLink } from '../nats/connect.js';
import { parseServers } from '../nats/settings.js';
import { TeeSink } from './tee.js';
import { defaultWitnessPath } from './witness.js';
import { z } from 'zod';
import { describeValue, fieldDoc as doc, firstProblem, strictMapping } from '../config/schema.js';

/**
 * Decision log configuration. Every field is documented, with its default, in
 * docs/decision-log.md ("Configuration"), generated from decisionLogConfigSchema below.
 */

/**
 * The NATS replica as configured: the fields keep their meaning from NatsReplicaOptions (declared
 * once, where they are used); their defaults are in the schema below and the docs table.
 */
export type NatsSinkConfig = {
  /** NATS server URL(s), comma-separated. */
  url: string;
} & Pick<NatsReplicaOptions, 'stream' | 'subjectPrefix' | 'queueDir' | 'queueMaxBytes' | 'memoryMaxRecords' | 'publishTimeoutMs' | 'duplicateWindowMs' | 'maxAgeMs'>;

/** The decision log as configured: the local log's settings (meanings on FileSinkOptions) and the NATS replica. */
export type DecisionLogConfig = Pick<FileSinkOptions, 'dir' | 'maxFileBytes' | 'checkpointEvery' | 'checkpointIntervalMs' | 'signingKeyPath' | 'fsync'> & {
  /** Resolved: a path, or null for no witness (never left unset). */
  witnessPath: string | null;
  /** Central sink; null = local log only. */
  nats: NatsSinkConfig | null;
};

export type DecisionLogConfigInput = Partial<Omit<DecisionLogConfig, 'nats'>> & {
  nats?: (Partial<NatsSinkConfig> & { url: string }) | null;
};

export class DecisionLogConfigError extends Error {
  constructor(field: string, problem: string) {
    super(`decision log config: ${field ? `${field}: ` : ''}${problem}`);
    this.name = 'DecisionLogConfigError';
  }
}

const MiB = 1024 * 1024;

/** `$TOLLGATE_STATE_DIR/decisions`, or `./.state/decisions`. */
export function defaultDecisionLogDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.TOLLGATE_STATE_DIR || '.state', 'decisions');
}

/** An integer ≥ min, with the value in the message (zod's own would not name it). */
const intAtLeast = (min: number) => z.number({ error: (iss) => `must be an integer ≥ ${min}, got ${describeValue(iss.input)}` }).superRefine((v, ctx) => {
  if (!Number.isSafeInteger(v) || v < min) ctx.addIssue({ code: 'custom', message: `must be an integer ≥ ${min}, got ${v}` });
});
/** A string field (paths, names), saying what was given instead. */
const str = () => z.string({ error: (iss) => `must be a string, got ${describeValue(iss.input)}` });

const NAME = /^[A-Za-z0-9_-]+$/;
const SUBJECT_PREFIX = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

const natsSchema = strictMapping({
  url: str().superRefine((v, ctx) => {
    if (!v) ctx.addIssue({ code: 'custom', message: 'is required to enable the NATS sink (e.g. nats://127.0.0.1:4222)' });
  }).meta(doc('—', 'NATS server URL(s), comma-separated (required to enable)')),
  stream: str().superRefine((v, ctx) => {
    if (!NAME.test(v)) ctx.addIssue({ code: 'custom', message: `"${v}" is not a valid stream name (letters, digits, _ and -)` });
  }).optional().meta(doc('`TOLLGATE_DECISIONS`', 'JetStream stream')),
  subjectPrefix: str().superRefine((v, ctx) => {
    if (!SUBJECT_PREFIX.test(v)) ctx.addIssue({ code: 'custom', message: `"${v}" is not a subject prefix (dot-separated tokens, no wildcards)` });
  }).optional().meta(doc('`tollgate.decisions`', 'subjects are `<prefix>.<namespace>.<server>`')),
  queueDir: str().optional().meta(doc('`<dir>/../decisions-spool`', 'disk spool and replication state')),
  queueMaxBytes: intAtLeast(4096).optional().meta(doc('256 MiB', 'spool cap; when full, records are read back from the local log later')),
  memoryMaxRecords: intAtLeast(1).optional().meta(doc('10000', 'records held in memory while NATS acks, before spilling to disk')),
  publishTimeoutMs: intAtLeast(1).optional().meta(doc('5000', 'wait for an ack before retrying')),
  duplicateWindowMs: intAtLeast(1).optional().meta(doc('600000', 'duplicate window of a stream the sink creates')),
  maxAgeMs: intAtLeast(0).optional().meta(doc('0 (forever)', 'max age of a stream the sink creates')),
}, 'must be a mapping with url, or null');

/**
 * The decision log configuration createDecisionSink accepts: one schema checks it, and the table
 * in docs/decision-log.md ("Configuration") is generated from it (scripts/config-docs.ts).
 * Defaults that depend on `dir` or the environment are filled by resolveDecisionLogConfig.
 */
export const decisionLogConfigSchema = strictMapping({
  dir: str().optional().meta(doc('`$TOLLGATE_STATE_DIR/decisions`, else `./.state/decisions`', 'local log directory (one writer per directory)')),
  maxFileBytes: intAtLeast(4096).optional().meta(doc('64 MiB', 'rotate before a file would exceed this (min 4096)')),
  checkpointEvery: intAtLeast(1).optional().meta(doc('1000', 'sign a checkpoint after this many records')),
  checkpointIntervalMs: intAtLeast(0).optional().meta(doc('10000', '...and on this period while records are unsigned; 0 disables the timer')),
  signingKeyPath: str().optional().meta(doc('`<dir>/../decision-log-key.pem`', 'checkpoint signing key; created (Ed25519, 0600) if missing. `tollgate authz` always uses `<state_dir>/decision-log-key.pem` (the same file when `decision_log_dir` is the default)')),
  fsync: str().superRefine((v, ctx) => {
    if (!['always', 'checkpoint', 'never'].includes(v)) ctx.addIssue({ code: 'custom', message: `must be always, checkpoint or never, got ${v}` });
  }).optional().meta(doc('`checkpoint`', '`checkpoint`, `always` or `never` (see Durability)')),
  witnessPath: str().nullable().optional().meta(doc('`<dir>.witness.jsonl`', 'append-only copy of every checkpoint, outside the log directory (see Witness); null = none')),
  nats: natsSchema.nullable().optional().meta(doc('null', 'central sink; null = local log only')),
});

/** Fills defaults and checks values; errors name the field and what is accepted. */
export function resolveDecisionLogConfig(raw: DecisionLogConfigInput = {}, env: NodeJS.ProcessEnv = process.env): DecisionLogConfig {
  const parsed = decisionLogConfigSchema.safeParse(raw);
  if (!parsed.success) throw new DecisionLogConfigError(...firstProblem(parsed.error));
  const input = parsed.data;
  const dir = input.dir ?? defaultDecisionLogDir(env);
  const base = dirname(dir);
  const cfg: DecisionLogConfig = {
    dir,
    maxFileBytes: input.maxFileBytes ?? 64 * MiB,
    checkpointEvery: input.checkpointEvery ?? 1000,
    checkpointIntervalMs: input.checkpointIntervalMs ?? 10_000,
    signingKeyPath: input.signingKeyPath ?? join(base, 'decision-log-key.pem'),
    fsync: (input.fsync ?? 'checkpoint') as FsyncPolicy,
    witnessPath: input.witnessPath === undefined ? defaultWitnessPath(dir) : input.witnessPath,
    nats: null,
  };
  if (cfg.witnessPath !== null && resolve(cfg.witnessPath).startsWith(resolve(dir) + sep)) {
    throw new DecisionLogConfigError('witnessPath', `${cfg.witnessPath} is inside the log directory ${dir}: put the witness where whoever can rewrite the log cannot (another directory, owner or mount)`);
  }
  const n = input.nats;
  if (n) {
    cfg.nats = {
      url: n.url,
      stream: n.stream ?? 'TOLLGATE_DECISIONS',
      subjectPrefix: n.subjectPrefix ?? 'tollgate.decisions',
      queueDir: n.queueDir ?? join(base, 'decisions-spool'),
      queueMaxBytes: n.queueMaxBytes ?? 256 * MiB,
      memoryMaxRecords: n.memoryMaxRecords ?? 10_000,
      publishTimeoutMs: n.publishTimeoutMs ?? 5000,
      duplicateWindowMs: n.duplicateWindowMs ?? 10 * 60_000,
      maxAgeMs: n.maxAgeMs ?? 0,
    };
  }
  return cfg;
}

export interface CreateSinkOptions {
  /** Where operational warnings go (torn tail found, NATS down, spool full...). Default stderr. */
  warn?: (message: string) => void;
  env?: NodeJS.ProcessEnv;
  /**
   * The process's NATS connection (authz passes its one link). Without it, `nats.url` is connected
   * to on its own, without TLS: for tools and tests against a NATS without users.
   */
  link?: NatsLink;
}

/**
 * The decision sink authz writes to: the local hash-chained log, plus NATS replication when
 * configured. Opening never waits on NATS (it connects in the background).
 */
export async function createDecisionSink(input: DecisionLogConfigInput = {}, opts: CreateSinkOptions = {}): Promise<TeeSink> {
  const cfg = resolveDecisionLogConfig(input, opts.env);
  const warn = opts.warn ?? ((m: string) => process.stderr.write(`tollgate decision log: ${m}\n`));
  const file = FileDecisionSink.open({ ...cfg, warn });
  const replicas = [];
  if (cfg.nats) {
    try {
      // Loaded only when replication is on: a pod without it never pays for the NATS clients.
      const [{ NatsReplica }, { NatsLink }, { identityToken }] = await Promise.all([
        import('./nats-sink.js'), import('../nats/connect.js'), import('../nats/identity.js'),
      ]);
      const link = opts.link ?? NatsLink.open({ servers: parseServers(cfg.nats.url, 'nats.url'), tls: null }, { name: 'tollgate-decision-log' });
      const writer = link.identity ? identityToken(link.identity) : null;
      const replica = new NatsReplica({ ...cfg.nats, link, ownsLink: !opts.link, writer, localLogDir: cfg.dir, warn, logId: file.logId, onGap: (m) => file.refuse(m) }, file.chainHead.seq);
      file.onCheckpoint((c) => replica.anchor(c));
      replicas.push(replica);
    } catch (e) {
      await file.close();
      throw e;
    }
  }
  return new TeeSink(file, replicas, warn);
}
