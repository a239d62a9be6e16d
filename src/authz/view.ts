import type { TraceCarrier } from '../telemetry/trace-context.js';

/** The HTTP request as authz sees it, independent of the gRPC message it came in. */
export interface HttpRequestView {
  /** Envoy's x-request-id. */
  id: string;
  method: string;
  path: string;
  query: string;
  host: string;
  scheme: string;
  protocol: string;
  /** Lower-case names, as Envoy sends them. */
  headers: Record<string, string>;
  body: Buffer;
  /** Envoy said it cut the body short (allow_partial_message). */
  truncated: boolean;
  /** Per-route values from the sidecar config: server, namespace, resource, resource_metadata. */
  context: Record<string, string>;
  source: { address: string; principal: string };
  destination: { address: string; principal: string };
  /**
   * The CheckRequest's `attributes` as decoded (GRPC_LOADER_OPTIONS), kept whole so the policy
   * input can carry them exactly as opa-envoy-plugin does; absent when the view was built another
   * way (ext_proc, the policy toolkit), in which case the input is rebuilt from the fields above.
   */
  checkAttributes?: unknown;
  traceId: string | null;
  /**
   * When Envoy stops waiting for the answer (epoch ms, from the gRPC call deadline Envoy sets to
   * its ext_authz timeout); null or absent when unknown.
   */
  deadline?: number | null;
  /** W3C trace context of the Check call itself (gRPC metadata: Envoy's ext_authz span), when sent. */
  callTrace?: TraceCarrier | null;
}
