import type { NatsConnection } from '@nats-io/transport-node';
import { DEFAULT_NATS_SETTINGS, regionalBucket } from '../budget/config.js';
import { createBudgetBuckets } from '../budget/nats-store.js';
import { resolveDecisionLogConfig } from '../decisionlog/config.js';
import { ensureDecisionStream } from '../decisionlog/nats-sink.js';
import { ensurePinBuckets } from './pins.js';
import { BundlePublisher } from './publisher.js';

/**
 * Where the streams go in a multi-region supercluster (docs/multi-region.md). Both empty: one
 * cluster, the server places everything.
 */
export interface StreamPlacement {
  /** The control plane's region: bundles, pointer, decision log, pins, budget config and the global usage bucket. */
  home: string | null;
  /** Regions that get a usage bucket of their own, placed there (budgets with `nats.scope: region`). */
  budgetRegions: string[];
}

export const NO_PLACEMENT: StreamPlacement = { home: null, budgetRegions: [] };

/**
 * The control plane creates every stream and bucket of the mesh at start, with the settings the
 * data plane expects, so that authz and reviewers need no right to create or change streams (see
 * nats/permissions.ts). Idempotent: existing streams are left as they are. `replicas`: 3 on a
 * three-node cluster, so a node's loss loses no record, lease or bundle.
 */
export async function provisionStreams(nc: NatsConnection, warn: (m: string) => void = () => undefined, replicas = 1, placement: StreamPlacement = NO_PLACEMENT): Promise<void> {
  const home = placement.home;
  await createBudgetBuckets(nc, DEFAULT_NATS_SETTINGS, replicas, home);
  for (const region of placement.budgetRegions) {
    await createBudgetBuckets(nc, { ...DEFAULT_NATS_SETTINGS, bucket: regionalBucket(DEFAULT_NATS_SETTINGS.bucket, region), region }, replicas, home);
  }
  const log = resolveDecisionLogConfig({ dir: '/unused', nats: { url: 'nats://unused:4222' } }).nats!;
  await ensureDecisionStream(nc, { ...log, replicas, region: home }, warn);
  await ensurePinBuckets(nc, replicas, home);
  // The bundle buckets too (default names): the Kubernetes operator publishes MCPPolicy bundles
  // into them and may only open them.
  await BundlePublisher.open(nc, { replicas, region: home });
}
