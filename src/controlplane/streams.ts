import { jetstreamManager, type StreamUpdateConfig } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { DEFAULT_NATS_SETTINGS, regionalBucket } from '../budget/config.js';
import { createBudgetBuckets } from '../budget/nats-store.js';
import { resolveDecisionLogConfig } from '../decisionlog/config.js';
import { ensureDecisionStream } from '../decisionlog/nats-sink.js';
import { ensurePinBuckets } from './pins.js';
import { BundlePublisher } from './publisher.js';
import { DEFAULT_RESOURCES as R } from '../nats/permissions.js';

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
  await raiseConsumerLimits(nc, warn);
}

/**
 * Consumers a mesh stream may have. nats-server 2.15 gives every stream a limit of 1,000 consumers
 * unless the stream sets its own, and every authz sidecar keeps an ordered consumer on the bundle
 * pointer (its watch) and opens short-lived ones on the bundle store for each publish: with the
 * default, the thousandth sidecar could no longer load policy (measured, docs/scaling.md).
 */
export const MESH_MAX_CONSUMERS = 20_000;

/** The streams sidecars open consumers on: bundle pointer and store, budget definitions, pins. */
const CONSUMED_STREAMS = [`KV_${R.pointer}`, `OBJ_${R.bundles}`, `KV_${R.budgetConfig}`, `KV_${R.pins}`, `KV_${R.toolsSeen}`, R.decisions];

async function raiseConsumerLimits(nc: NatsConnection, warn: (m: string) => void): Promise<void> {
  const jsm = await jetstreamManager(nc);
  for (const name of CONSUMED_STREAMS) {
    const info = await jsm.streams.info(name);
    if (info.config.max_consumers === MESH_MAX_CONSUMERS) continue;
    // The client's update type predates servers that let max_consumers change; it sends the
    // stream's whole config with this field replaced.
    const change: Partial<StreamUpdateConfig> & { max_consumers: number } = { max_consumers: MESH_MAX_CONSUMERS };
    try {
      await jsm.streams.update(name, change);
    } catch (e) {
      // An older server that cannot change the limit still serves a mesh below it.
      warn(`NATS stream ${name}: cannot set max_consumers to ${MESH_MAX_CONSUMERS} (${(e as Error).message}); the server's limit (1,000 by default since 2.15) caps the sidecars that can watch bundles`);
    }
  }
}
