import type { BudgetSpec } from '../budget/config.js';
import type { BudgetMetrics } from '../budget/gate.js';
import type { DecisionLogStats } from '../decisionlog/tee.js';
import type { BundleSourceStatus, RejectionRecord } from '../policy/sources/types.js';
import { natsReplicaStats, replicationLag } from './decision-log-metrics.js';
import { z } from 'zod';

export const STATUS_SCHEMA = 'tollgate.status/v1';

/** Whether this instance should get traffic, and if not, why (worded for an operator). */
export interface Readiness {
  ready: boolean;
  reasons: string[];
}

/**
 * GET /status: everything `tollgate status` prints. Field names are part of the admin API. One
 * schema: the server builds the document to its type (z.output) and `tollgate status` checks what
 * it receives with it, so a field the CLI reads is a field the server was typed to send.
 */
const count = z.number().nonnegative();

const rejectionSchema = z.object({
  at: z.string(),
  message: z.string(),
  revision: z.string().nullable(),
}) satisfies z.ZodType<RejectionRecord>;

export const decisionLogStatusSchema = z.object({
  dir: z.string(),
  file: z.string(),
  seq: count,
  records: count,
  writeErrors: count,
  checkpoints: count,
  rotations: count,
  /** NATS replication, when configured. */
  replication: z.object({
    connected: z.boolean(),
    healthy: z.boolean(),
    /** Records in the local log not yet acknowledged by NATS. */
    pending: count,
    spooledBytes: count,
    published: count,
    failures: count,
    dropped: count,
    lastError: z.string().nullable(),
  }).nullable(),
});
export type DecisionLogStatus = z.output<typeof decisionLogStatusSchema>;

export const budgetStatusEntrySchema = z.object({
  name: z.string(),
  window: z.string(),
  action: z.string(),
  limit: z.number(),
  /** Tokens left as this instance last saw them; null before any call the budget applied to. */
  remaining: z.number().nullable(),
  chargedTokens: z.number(),
  denials: z.number(),
});
export type BudgetStatusEntry = z.output<typeof budgetStatusEntrySchema>;

export const statusDocSchema = z.object({
  schema: z.literal(STATUS_SCHEMA),
  instance: z.string(),
  version: z.string(),
  startedAt: z.string(),
  uptimeSeconds: z.number(),
  ready: z.boolean(),
  notReady: z.array(z.string()),
  grpc: z.object({ listen: z.string().nullable(), up: z.boolean() }),
  policy: z.object({
    source: z.enum(['nats', 'http', 'dir'] as const satisfies ReadonlyArray<BundleSourceStatus['kind']>).nullable(),
    revision: z.string().nullable(),
    loadedAt: z.string().nullable(),
    swaps: count,
    rejections: count,
    lastRejection: rejectionSchema.nullable(),
    sourceError: z.string().nullable(),
  }),
  decisionLog: decisionLogStatusSchema.nullable(),
  budgets: z.object({ mode: z.enum(['local', 'nats']), budgets: z.array(budgetStatusEntrySchema) }).nullable(),
});
export type StatusDoc = z.output<typeof statusDocSchema>;

/** The budget side as the status page sees it (OpenedBudgets plus the metrics' remaining view). */
export interface BudgetsView {
  mode: 'local' | 'nats';
  budgets: ReadonlyArray<Pick<BudgetSpec, 'name' | 'limit' | 'window' | 'action'>>;
  metrics: BudgetMetrics;
  remaining?: () => ReadonlyMap<string, number>;
}

export interface StatusSources {
  instanceId: string;
  version: string;
  startedAt?: Date;
  clock?: () => number;
  /** The ext_authz gRPC server: its address and whether it accepts calls. */
  grpc: () => { listen: string | null; up: boolean };
  /** The policy source's status; null while it is being set up. */
  policy: () => BundleSourceStatus | null;
  decisionLog?: () => DecisionLogStats | null;
  budgets?: () => BudgetsView | null;
}

export interface StatusProvider {
  status(): StatusDoc;
  readiness(): Readiness;
}

function readinessOf(policy: BundleSourceStatus | null, grpc: { listen: string | null; up: boolean }): Readiness {
  const reasons: string[] = [];
  if (!policy) {
    reasons.push('the policy source is still starting');
  } else if (!policy.revision) {
    const why = policy.sourceError ?? policy.lastError?.message ?? `waiting for a first bundle from the ${policy.kind} source`;
    reasons.push(`no policy loaded yet, every call is refused (fail closed): ${why}`);
  }
  if (!grpc.up) reasons.push(`the ext_authz gRPC server${grpc.listen ? ` on ${grpc.listen}` : ''} is not accepting calls`);
  return { ready: reasons.length === 0, reasons };
}

function decisionLogStatus(s: DecisionLogStats): DecisionLogStatus {
  const nats = s.replicas.map(natsReplicaStats).find((r) => r !== null) ?? null;
  return {
    dir: s.file.dir, file: s.file.file, seq: s.file.seq, records: s.file.records, writeErrors: s.file.writeErrors,
    checkpoints: s.file.checkpoints, rotations: s.file.rotations,
    replication: nats && {
      connected: nats.connected, healthy: nats.healthy, pending: replicationLag(s, nats), spooledBytes: nats.spooledBytes,
      published: nats.published, failures: nats.failures, dropped: nats.dropped, lastError: nats.lastError,
    },
  };
}

function budgetStatus(b: BudgetsView): NonNullable<StatusDoc['budgets']> {
  const remaining = b.remaining?.();
  return {
    mode: b.mode,
    budgets: b.budgets.map((spec) => ({
      name: spec.name, window: spec.window, action: spec.action, limit: spec.limit,
      remaining: remaining?.get(spec.name) ?? null,
      chargedTokens: b.metrics.chargedTokens.get(spec.name) ?? 0,
      denials: b.metrics.denials.get(spec.name) ?? 0,
    })),
  };
}

/** Builds /status and /readyz answers from the running parts, read fresh on every request. */
export function createStatusProvider(src: StatusSources): StatusProvider {
  const clock = src.clock ?? Date.now;
  const startedAt = src.startedAt ?? new Date(clock());
  return {
    readiness: () => readinessOf(src.policy(), src.grpc()),
    status(): StatusDoc {
      const policy = src.policy();
      const grpc = src.grpc();
      const ready = readinessOf(policy, grpc);
      const log = src.decisionLog?.() ?? null;
      const budgets = src.budgets?.() ?? null;
      return {
        schema: STATUS_SCHEMA,
        instance: src.instanceId,
        version: src.version,
        startedAt: startedAt.toISOString(),
        uptimeSeconds: Math.max(0, Math.round((clock() - startedAt.getTime()) / 1000)),
        ready: ready.ready,
        notReady: ready.reasons,
        grpc,
        policy: {
          source: policy?.kind ?? null, revision: policy?.revision ?? null, loadedAt: policy?.loadedAt ?? null,
          swaps: policy?.swaps ?? 0, rejections: policy?.rejections ?? 0, lastRejection: policy?.lastError ?? null,
          sourceError: policy?.sourceError ?? null,
        },
        decisionLog: log && decisionLogStatus(log),
        budgets: budgets && budgetStatus(budgets),
      };
    },
  };
}
