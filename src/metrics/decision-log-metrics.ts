import type { Registry } from 'prom-client';
import type { NatsReplicaStats } from '../decisionlog/nats-sink.js';
import type { DecisionLogStats } from '../decisionlog/tee.js';
import { scrapedCounter, scrapedGauge, type Sample } from './scrape.js';

const NONE: readonly Sample[] = [];

/** The NATS replica's stats, told apart from other replica kinds (the tee types them unknown). */
export function natsReplicaStats(x: unknown): NatsReplicaStats | null {
  if (typeof x !== 'object' || x === null) return null;
  const r = x as Partial<Record<keyof NatsReplicaStats, unknown>>;
  return typeof r.ackedSeq === 'number' && typeof r.queued === 'number' && typeof r.spooledBytes === 'number' && typeof r.healthy === 'boolean'
    ? (x as NatsReplicaStats)
    : null;
}

/** Records in the local log that the replica has not had acknowledged yet (memory, spool, catch-up). */
export function replicationLag(stats: DecisionLogStats, replica: NatsReplicaStats): number {
  return Math.max(0, stats.file.seq - replica.ackedSeq);
}

/** Decision log throughput, write failures and NATS replication backlog, read at scrape time. */
export function registerDecisionLogMetrics(registry: Registry, prefix: string, read: () => DecisionLogStats | null): void {
  const fromFile = (f: (s: DecisionLogStats) => number): readonly Sample[] => {
    const s = read();
    return s ? [{ value: f(s) }] : NONE;
  };
  const fromReplicas = (f: (s: DecisionLogStats, r: NatsReplicaStats) => number): readonly Sample[] => {
    const s = read();
    if (!s) return NONE;
    let total = 0;
    let any = false;
    for (const x of s.replicas) {
      const r = natsReplicaStats(x);
      if (!r) continue;
      any = true;
      total += f(s, r);
    }
    return any ? [{ value: total }] : NONE;
  };

  scrapedCounter({
    registry, name: `${prefix}decision_log_records_total`,
    help: 'Decision records written to the local log since start.',
    read: () => fromFile((s) => s.file.records),
  });
  scrapedCounter({
    registry, name: `${prefix}decision_log_write_errors_total`,
    help: 'Failed writes to the local decision log since start; a call whose record cannot be written is refused.',
    read: () => fromFile((s) => s.file.writeErrors),
  });
  scrapedCounter({
    registry, name: `${prefix}decision_log_tampering_total`,
    help: 'Times the log file being written was found deleted or truncated under authz (alert on any increase).',
    read: () => fromFile((s) => s.file.tampered ?? 0),
  });
  scrapedCounter({
    registry, name: `${prefix}decision_log_witness_errors_total`,
    help: 'Checkpoints that could not be copied to the witness file (the end of the log is then anchored only elsewhere).',
    read: () => fromFile((s) => s.file.witnessErrors ?? 0),
  });
  scrapedGauge({
    registry, name: `${prefix}decision_log_queue_depth`,
    help: 'Decision records in the local log not yet acknowledged by NATS (in memory, in the spool, or being read back).',
    read: () => fromReplicas(replicationLag),
  });
  scrapedGauge({
    registry, name: `${prefix}decision_log_spool_bytes`,
    help: 'Bytes of decision records waiting in the on-disk NATS spool.',
    read: () => fromReplicas((_s, r) => r.spooledBytes),
  });
  scrapedGauge({
    registry, name: `${prefix}decision_log_replica_healthy`,
    help: '1 when the NATS replica is connected and publishing, 0 when it is not.',
    read: () => fromReplicas((_s, r) => (r.healthy ? 1 : 0)),
  });
  scrapedCounter({
    registry, name: `${prefix}decision_log_replica_dropped_total`,
    help: 'Decision records the NATS replica gave up on (spool full, no catch-up from the local log); they remain only in the local log.',
    read: () => fromReplicas((_s, r) => r.dropped),
  });
}
