import type { NatsConnection } from '@nats-io/transport-node';
import { DEFAULT_NATS_SETTINGS } from '../budget/config.js';
import { createBudgetBuckets } from '../budget/nats-store.js';
import { resolveDecisionLogConfig } from '../decisionlog/config.js';
import { ensureDecisionStream } from '../decisionlog/nats-sink.js';
import { ensurePinBuckets } from './pins.js';
import { BundlePublisher } from './publisher.js';

/**
 * The control plane creates every stream and bucket of the mesh at start, with the settings the
 * data plane expects, so that authz and reviewers need no right to create or change streams (see
 * nats/permissions.ts). Idempotent: existing streams are left as they are. `replicas`: 3 on a
 * three-node cluster, so a node's loss loses no record, lease or bundle.
 */
export async function provisionStreams(nc: NatsConnection, warn: (m: string) => void = () => undefined, replicas = 1): Promise<void> {
  await createBudgetBuckets(nc, DEFAULT_NATS_SETTINGS, replicas);
  const log = resolveDecisionLogConfig({ dir: '/unused', nats: { url: 'nats://unused:4222' } }).nats!;
  await ensureDecisionStream(nc, { ...log, replicas }, warn);
  await ensurePinBuckets(nc, replicas);
  // The bundle buckets too (default names): the Kubernetes operator publishes MCPPolicy bundles
  // into them and may only open them.
  await BundlePublisher.open(nc, { replicas });
}
