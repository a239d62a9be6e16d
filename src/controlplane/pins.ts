import { connect } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { PINS_BUCKET, SEEN_BUCKET } from '../pins/buckets.js';

/**
 * The control plane owns the tool-pinning buckets (docs/tool-pinning.md), as it owns the bundle
 * buckets: it creates them with their retention; authz and `tollgate tools` only open them.
 */
export async function ensurePinBuckets(servers: string[]): Promise<void> {
  const nc = await connect({ servers, name: 'tollgate-controlplane-pins', waitOnFirstConnect: true, maxReconnectAttempts: -1 });
  try {
    const kvm = new Kvm(nc);
    await kvm.create(PINS_BUCKET, { history: 10, description: 'Tollgate approved tool definitions (signed by approvers)' });
    await kvm.create(SEEN_BUCKET, { history: 1, description: 'Tool definitions MCP servers currently offer, as authz saw them' });
  } finally {
    await nc.close();
  }
}
