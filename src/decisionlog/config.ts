import { dirname, join, resolve, sep } from 'node:path';
import { FileDecisionSink, type FsyncPolicy } from './file-sink.js';
import type { NatsLink } from '../nats/connect.js';
import { parseServers } from '../nats/settings.js';
import { TeeSink } from './tee.js';
import { defaultWitnessPath } from './witness.js';

/**
 * Decision log configuration. Every field is documented, with its default, in
 * docs/decision-log.md ("Configuration").
 */

export interface NatsSinkConfig {
  /** NATS server URL(s), comma-separated. Required to enable the central sink. */
  url: string;
  /** JetStream stream; created (file storage, limits retention) if missing. Default TOLLGATE_DECISIONS. */
  stream: string;
  /** Records go to `<subjectPrefix>.<namespace>.<server>`. Default tollgate.decisions. */
  subjectPrefix: string;
  /** Disk spool and replication state. Default `<dir>/../decisions-spool`. */
  queueDir: string;
  /** Size cap of the spool. Default 256 MiB. When full, later records are read back from the local log instead. */
  queueMaxBytes: number;
  /** Records held in memory while NATS answers before spilling to the spool. Default 10000. */
  memoryMaxRecords: number;
  /** Wait for a publish ack before retrying. Default 5000 ms. */
  publishTimeoutMs: number;
  /** Duplicate window of a stream this creates. Default 10 min. */
  duplicateWindowMs: number;
  /** Max age of a stream this creates, 0 = forever. Default 0. */
  maxAgeMs: number;
}

export interface DecisionLogConfig {
  /** Local log directory. Default `$TOLLGATE_STATE_DIR/decisions`, or `./.state/decisions`. */
  dir: string;
  /** Rotate before a file would exceed this. Default 64 MiB. */
  maxFileBytes: number;
  /** Sign a checkpoint after this many records. Default 1000. */
  checkpointEvery: number;
  /** ...and on this period while records are unsigned. Default 10000 ms; 0 disables the timer. */
  checkpointIntervalMs: number;
  /** Private key for checkpoints (PKCS#8 PEM or JWK); an Ed25519 key is created if missing. Default `<dir>/../decision-log-key.pem` (beside the log directory: `<state_dir>/decision-log-key.pem`, where tollgate authz puts it, for the default layout). */
  signingKeyPath: string;
  /** fdatasync: "checkpoint" (default), "always" (every record), "never". */
  fsync: FsyncPolicy;
  /**
   * Append-only copy of every checkpoint, outside the log directory; null = none. Default
   * `<dir>.witness.jsonl` beside the directory (e.g. `.state/decisions.witness.jsonl`).
   */
  witnessPath: string | null;
  /** Central sink; null (default) = local log only. */
  nats: NatsSinkConfig | null;
}

export type DecisionLogConfigInput = Partial<Omit<DecisionLogConfig, 'nats'>> & {
  nats?: (Partial<NatsSinkConfig> & { url: string }) | null;
};

export class DecisionLogConfigError extends Error {
  constructor(field: string, problem: string) {
    super(`decision log config: ${field}: ${problem}`);
    this.name = 'DecisionLogConfigError';
  }
}

const MiB = 1024 * 1024;

/** `$TOLLGATE_STATE_DIR/decisions`, or `./.state/decisions`. */
export function defaultDecisionLogDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.TOLLGATE_STATE_DIR || '.state', 'decisions');
}

function positiveInt(field: string, v: number, min = 1): number {
  if (!Number.isSafeInteger(v) || v < min) throw new DecisionLogConfigError(field, `must be an integer ≥ ${min}, got ${v}`);
  return v;
}

const NAME = /^[A-Za-z0-9_-]+$/;
const SUBJECT_PREFIX = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/** Fills defaults and checks values; errors name the field and what is accepted. */
export function resolveDecisionLogConfig(input: DecisionLogConfigInput = {}, env: NodeJS.ProcessEnv = process.env): DecisionLogConfig {
  const dir = input.dir ?? defaultDecisionLogDir(env);
  const base = dirname(dir);
  const fsync = input.fsync ?? 'checkpoint';
  if (!['always', 'checkpoint', 'never'].includes(fsync)) throw new DecisionLogConfigError('fsync', `must be always, checkpoint or never, got ${fsync}`);
  const cfg: DecisionLogConfig = {
    dir,
    maxFileBytes: positiveInt('maxFileBytes', input.maxFileBytes ?? 64 * MiB, 4096),
    checkpointEvery: positiveInt('checkpointEvery', input.checkpointEvery ?? 1000),
    checkpointIntervalMs: positiveInt('checkpointIntervalMs', input.checkpointIntervalMs ?? 10_000, 0),
    signingKeyPath: input.signingKeyPath ?? join(base, 'decision-log-key.pem'),
    fsync,
    witnessPath: input.witnessPath === undefined ? defaultWitnessPath(dir) : input.witnessPath,
    nats: null,
  };
  if (cfg.witnessPath !== null && resolve(cfg.witnessPath).startsWith(resolve(dir) + sep)) {
    throw new DecisionLogConfigError('witnessPath', `${cfg.witnessPath} is inside the log directory ${dir}: put the witness where whoever can rewrite the log cannot (another directory, owner or mount)`);
  }
  const n = input.nats;
  if (n) {
    if (!n.url) throw new DecisionLogConfigError('nats.url', 'is required to enable the NATS sink (e.g. nats://127.0.0.1:4222)');
    const stream = n.stream ?? 'TOLLGATE_DECISIONS';
    if (!NAME.test(stream)) throw new DecisionLogConfigError('nats.stream', `"${stream}" is not a valid stream name (letters, digits, _ and -)`);
    const subjectPrefix = n.subjectPrefix ?? 'tollgate.decisions';
    if (!SUBJECT_PREFIX.test(subjectPrefix)) throw new DecisionLogConfigError('nats.subjectPrefix', `"${subjectPrefix}" is not a subject prefix (dot-separated tokens, no wildcards)`);
    cfg.nats = {
      url: n.url,
      stream,
      subjectPrefix,
      queueDir: n.queueDir ?? join(base, 'decisions-spool'),
      queueMaxBytes: positiveInt('nats.queueMaxBytes', n.queueMaxBytes ?? 256 * MiB, 4096),
      memoryMaxRecords: positiveInt('nats.memoryMaxRecords', n.memoryMaxRecords ?? 10_000),
      publishTimeoutMs: positiveInt('nats.publishTimeoutMs', n.publishTimeoutMs ?? 5000),
      duplicateWindowMs: positiveInt('nats.duplicateWindowMs', n.duplicateWindowMs ?? 10 * 60_000),
      maxAgeMs: positiveInt('nats.maxAgeMs', n.maxAgeMs ?? 0, 0),
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
