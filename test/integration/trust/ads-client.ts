import * as grpc from '@grpc/grpc-js';
import { aggregatedDiscoveryService } from '../../../src/envoy/protos.js';
import { ResourceTypeUrl } from '../../../src/envoy/types.js';

/** A process speaking ADS as an Envoy would (or as an attacker pretending to be one). */

export interface AdsAttempt {
  /** gRPC status the stream ended with (null: still open after the wait, i.e. admitted). */
  code: number | null;
  details: string;
  /** DiscoveryResponses received (their type URLs). */
  responses: string[];
  close(): void;
}

function str(v: string): { stringValue: string } { return { stringValue: v }; }

/**
 * Opens an ADS stream with `creds`, identifies as `nodeId` with `metadata`, asks for listeners and
 * clusters, and reports what happened: the stream ended (refused), or a first response arrived
 * (admitted), or `waitMs` passed with neither.
 */
export async function tryAds(address: string, creds: grpc.ChannelCredentials, nodeId: string, metadata: Record<string, string>, waitMs = 10_000): Promise<AdsAttempt> {
  const client = new grpc.Client(address, creds);
  const method = aggregatedDiscoveryService().StreamAggregatedResources!;
  const stream = client.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize as (b: Buffer) => { typeUrl: string });
  const out: AdsAttempt = { code: null, details: '', responses: [], close: () => { stream.cancel(); client.close(); } };
  const ended = new Promise<void>((resolve) => {
    stream.on('data', (r: { typeUrl: string }) => { out.responses.push(r.typeUrl); resolve(); });
    stream.on('error', (e: grpc.ServiceError) => { out.code = e.code; out.details = e.details; resolve(); });
    stream.on('status', (s: grpc.StatusObject) => { if (out.code === null && s.code !== grpc.status.OK) { out.code = s.code; out.details = s.details; } resolve(); });
  });
  const fields: Record<string, { stringValue: string }> = {};
  for (const [k, v] of Object.entries(metadata)) fields[k] = str(v);
  stream.write({ node: { id: nodeId, cluster: nodeId, metadata: { fields } }, typeUrl: ResourceTypeUrl.cluster, resourceNames: [], versionInfo: '', responseNonce: '' });
  stream.write({ typeUrl: ResourceTypeUrl.listener, resourceNames: [], versionInfo: '', responseNonce: '' });
  await Promise.race([ended, new Promise((r) => setTimeout(r, waitMs))]);
  return out;
}
