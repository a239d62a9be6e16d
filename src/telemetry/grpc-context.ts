import type { Metadata } from '@grpc/grpc-js';
import { headerContext, type TraceCarrier } from './trace-context.js';

/** The W3C trace context a gRPC caller (Envoy's traced ext_authz client) put in the call's metadata. */
export function callTraceContext(metadata: Metadata): TraceCarrier | null {
  const first = (key: string): string | undefined => {
    const v = metadata.get(key)[0];
    return typeof v === 'string' ? v : undefined;
  };
  return headerContext({ traceparent: first('traceparent'), tracestate: first('tracestate') });
}
