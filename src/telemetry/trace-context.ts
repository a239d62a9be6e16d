/**
 * Which W3C trace context an MCP decision continues, when several are offered. Pure: no OTel SDK.
 *
 * Precedence (docs/observability.md, "Trace context"):
 *  1. `params._meta.traceparent` (with `tracestate`) of the JSON-RPC message: the MCP semantic
 *     conventions make the sender's MCP span the parent of the server span, whatever transport
 *     carried it (one HTTP request may carry a batch; one MCP request may be retried over several).
 *  2. `traceparent` in the gRPC metadata of the Check call: Envoy's ext_authz span, present when
 *     the sidecar traces (its xDS config has an OpenTelemetry tracer).
 *  3. `traceparent` of the HTTP request, as the client sent it and Envoy forwards it.
 *  4. None: a new trace.
 * When (1) wins, the transport context (2, else 3) is kept as a span link, as the conventions ask.
 */

/** A W3C trace context as the propagator reads it (lower-case header names). */
export interface TraceCarrier {
  traceparent: string;
  tracestate?: string;
}

export type TraceSource = 'meta' | 'call' | 'http' | 'none';

export interface ChosenContext {
  parent: TraceCarrier | null;
  source: TraceSource;
  /** Transport context linked to the span when the parent came from `params._meta`. */
  link: TraceCarrier | null;
}

/** tracestate is at most 32 list members of at most 256 characters: anything longer is dropped. */
const MAX_TRACESTATE = 32 * 257;
const HEX = /^[0-9a-f]+$/;

/**
 * A traceparent the W3C spec accepts (version 00 layout, or a future version's first 55
 * characters), with a non-zero trace and span id. Fixed-length checks only: caller data.
 */
export function validTraceparent(v: unknown): v is string {
  if (typeof v !== 'string' || v.length < 55 || v.length > 512) return false;
  if (v[2] !== '-' || v[35] !== '-' || v[52] !== '-') return false;
  const version = v.slice(0, 2);
  const traceId = v.slice(3, 35);
  const spanId = v.slice(36, 52);
  const flags = v.slice(53, 55);
  if (!HEX.test(version) || version === 'ff' || !HEX.test(traceId) || !HEX.test(spanId) || !HEX.test(flags)) return false;
  if (version === '00' && v.length !== 55) return false;
  if (version !== '00' && v.length > 55 && v[55] !== '-') return false;
  return !/^0+$/.test(traceId) && !/^0+$/.test(spanId);
}

function carrier(traceparent: unknown, tracestate: unknown): TraceCarrier | null {
  if (!validTraceparent(traceparent)) return null;
  return typeof tracestate === 'string' && tracestate.length > 0 && tracestate.length <= MAX_TRACESTATE
    ? { traceparent, tracestate }
    : { traceparent };
}

/** The context in a JSON-RPC message's `params._meta` (unprefixed keys, per SEP-414), or null. */
export function metaContext(params: Readonly<Record<string, unknown>> | null | undefined): TraceCarrier | null {
  const meta = params?._meta;
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) return null;
  const m = meta as Record<string, unknown>;
  return carrier(m.traceparent, m.tracestate);
}

/** The context in a header map (HTTP headers, gRPC metadata), or null. */
export function headerContext(headers: Readonly<Record<string, string | undefined>> | null | undefined): TraceCarrier | null {
  if (!headers) return null;
  return carrier(headers.traceparent, headers.tracestate);
}

/** Applies the precedence above. */
export function chooseContext(meta: TraceCarrier | null, call: TraceCarrier | null, http: TraceCarrier | null): ChosenContext {
  const transport = call ?? http;
  if (meta) {
    const sameSpan = transport !== null && transport.traceparent.slice(3, 52) === meta.traceparent.slice(3, 52);
    return { parent: meta, source: 'meta', link: sameSpan ? null : transport };
  }
  if (call) return { parent: call, source: 'call', link: null };
  if (http) return { parent: http, source: 'http', link: null };
  return { parent: null, source: 'none', link: null };
}

/** The trace id (32 hex) of a carrier. */
export function traceIdOf(c: TraceCarrier): string {
  return c.traceparent.slice(3, 35);
}
