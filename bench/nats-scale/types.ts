import type { Summary } from './stats.js';
import type { TrafficPlan } from './plan.js';
import type { RefusalCounts } from './refusals.js';

/**
 * What the parent and the worker processes of `make bench-nats-scale` say to each other (Node IPC),
 * and what one run reports.
 */

export interface WorkerSetup {
  servers: string[];
  /** The authz credential's files (each simulated sidecar connects with it; see docs/scaling.md). */
  tls: { ca: string; cert: string; key: string } | null;
  /** PEM of the bundle verification key. */
  verificationKey: string;
  plan: TrafficPlan;
  /** This worker's sidecars: from ≤ i < to. */
  from: number;
  to: number;
  /** Simulated sidecars sharing one NATS connection (1: one connection each, as real sidecars). */
  perConnection: number;
  /** Budget names, index = team. */
  budgetNames: string[];
  /** Where each sidecar's replication spool lives. */
  workDir: string;
  seed: number;
  /** Run id: subject server tokens and lease names carry it, so runs do not mix in the stream. */
  runId: string;
}

export interface SidecarReport {
  id: number;
  /** Revision → wall time (ms since the epoch, fractional) the sidecar swapped it in. */
  swaps: Record<string, number>;
  offered: number;
  /** Records acknowledged by JetStream (published + duplicates). */
  acked: number;
  failures: number;
  /** offer → ack, ms, every record. */
  publishMs: number[];
  allowed: number;
  refused: RefusalCounts;
  /** Times opening the budget store failed at start (a real authz would exit and be restarted). */
  restarts: number;
  /** Lease syncs that lost every compare-and-set round to other sidecars (the store's contentionCount). */
  crowdedOut: number;
}

export interface WorkerReport {
  sidecars: SidecarReport[];
  /** Tokens charged per budget name, over this worker's sidecars. */
  charged: Record<string, number>;
  /** CPU seconds this worker used (user + system). */
  cpuSec: number;
  peakRssBytes: number;
  warnings: string[];
}

export type ToWorker =
  | { type: 'setup'; setup: WorkerSetup }
  | { type: 'traffic' }
  | { type: 'stop' };

export type FromWorker =
  | { type: 'ready'; loaded: number }
  | { type: 'progress'; started: number }
  | { type: 'swapped'; revision: string; count: number }
  | { type: 'done'; report: WorkerReport }
  | { type: 'failed'; message: string };

export interface ServerUsage {
  name: string;
  cpuPercent: number;
  rssMiB: number;
  peakRssMiB: number;
}

export interface BudgetOutcome {
  name: string;
  limit: number;
  /** `reported` in the KV entry once every sidecar has reported and given its leases back. */
  used: number;
  /**
   * `committed` in the KV entry then: what was reported plus leases never given back (a give-back
   * crowded out at shutdown leaves its lease counted as spent). Never less than `charged`, or the
   * budget lost track of spending.
   */
  committed: number;
  /** What the simulated Checks charged (the sum the KV entry must hold). */
  charged: number;
  /** Tokens charged past the limit (from what the Checks charged: the KV entry can under-count). */
  overshoot: number;
  bound: number;
  sidecars: number;
}

export interface ScaleResult {
  sidecars: number;
  workers: number;
  connections: number;
  trafficSec: number;
  /** One entry per publish under load: propagation from the publish call to each sidecar's swap. */
  propagation: Array<{ revision: string; publishMs: number; toAll: Summary; reached: number }>;
  /** crowdedOut: lease syncs that lost every compare-and-set round, over all sidecars. */
  lease: { writesPerSec: number; budgets: BudgetOutcome[]; crowdedOut: number };
  log: { offered: number; acked: number; inStream: number; perSec: number; publishMs: Summary; failures: number };
  calls: { allowed: number; refused: RefusalCounts };
  /** Budget-store opens that failed at start, over all sidecars (see SidecarReport.restarts). */
  restarts: number;
  /** Seconds from forking the workers until every sidecar had a bundle (leases are taken on first use). */
  startSec: number;
  servers: ServerUsage[];
  streams: Array<{ name: string; messages: number; bytes: number; replicas: number }>;
  simulator: { cpuPercent: number; peakRssMiB: number };
  warnings: string[];
}
