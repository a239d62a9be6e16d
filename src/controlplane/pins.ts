import type { NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { placedIn } from '../nats/placement.js';
import { PINS_BUCKET, SEEN_BUCKET } from '../pins/buckets.js';

/**
 * The control plane owns the tool-pinning buckets (docs/tool-pinning.md), as it owns the bundle
 * buckets: it creates them with their retention; authz and `tollgate tools` only open them.
 */
export async function ensurePinBuckets(nc: NatsConnection, replicas = 1, region: string | null = null): Promise<void> {
  // On the control plane's one connection (src/nats/connect.ts), from provisionStreams.
  const kvm = new Kvm(nc);
  await kvm.create(PINS_BUCKET, { history: 10, replicas, description: 'Tollgate approved tool definitions (signed by approvers)', ...placedIn(region) });
  await kvm.create(SEEN_BUCKET, { history: 1, replicas, description: 'Tool definitions MCP servers currently offer, as authz saw them', ...placedIn(region) });
}
