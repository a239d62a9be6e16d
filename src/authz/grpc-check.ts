import type { AuthzOutcome } from './respond.js';
import type { HttpRequestView } from './view.js';

/**
 * Translation between ext_authz v3 messages (as @grpc/proto-loader decodes them: camelCase fields,
 * bytes as Buffer) and authz's own types. Nothing here decides anything.
 */

interface SocketAddr { address?: string; portValue?: number }
interface Peer { address?: { socketAddress?: SocketAddr }; principal?: string }
interface HttpAttrs {
  id?: string; method?: string; headers?: Record<string, string>; path?: string; host?: string; scheme?: string;
  query?: string; protocol?: string; body?: string; rawBody?: Buffer; size?: string | number;
}
export interface CheckRequestMsg {
  attributes?: {
    source?: Peer;
    destination?: Peer;
    request?: { http?: HttpAttrs };
    contextExtensions?: Record<string, string>;
  };
}

interface HeaderValueOption { header: { key: string; value: string }; appendAction: string }
export interface CheckResponseMsg {
  status: { code: number; message?: string };
  okResponse?: { headers: HeaderValueOption[]; headersToRemove: string[] };
  deniedResponse?: { status: { code: number }; headers: HeaderValueOption[]; body: string };
}

const EMPTY = Buffer.alloc(0);
const GRPC_OK = 0;
const GRPC_PERMISSION_DENIED = 7;
const GRPC_UNAUTHENTICATED = 16;

function peer(p: Peer | undefined): { address: string; principal: string } {
  const sa = p?.address?.socketAddress;
  return { address: sa?.address ? `${sa.address}:${sa.portValue ?? 0}` : '', principal: p?.principal ?? '' };
}

function traceIdOf(headers: Record<string, string>): string | null {
  const tp = headers.traceparent;
  if (tp) {
    const parts = tp.split('-');
    if (parts.length >= 3 && parts[1]?.length === 32) return parts[1];
  }
  return headers['x-b3-traceid'] ?? null;
}

export function toRequestView(msg: CheckRequestMsg): HttpRequestView {
  const attrs = msg.attributes ?? {};
  const http = attrs.request?.http ?? {};
  const headers = http.headers ?? {};
  const rawPath = http.path ?? '/';
  const q = rawPath.indexOf('?');
  const body = http.rawBody && http.rawBody.length ? http.rawBody : http.body ? Buffer.from(http.body, 'utf8') : EMPTY;
  return {
    id: http.id ?? headers['x-request-id'] ?? '',
    // As sent: Check refuses anything but exactly POST, GET or DELETE (methods are case-sensitive).
    method: http.method ?? '',
    path: rawPath,
    query: http.query || (q >= 0 ? rawPath.slice(q + 1) : ''),
    host: http.host ?? headers[':authority'] ?? '',
    scheme: http.scheme ?? 'http',
    protocol: http.protocol ?? '',
    headers,
    body,
    truncated: headers['x-envoy-auth-partial-body'] === 'true',
    context: attrs.contextExtensions ?? {},
    source: peer(attrs.source),
    destination: peer(attrs.destination),
    checkAttributes: msg.attributes,
    traceId: traceIdOf(headers),
  };
}

function options(h: Record<string, string>): HeaderValueOption[] {
  const out: HeaderValueOption[] = [];
  for (const key in h) out.push({ header: { key, value: h[key]! }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' });
  return out;
}

export function toCheckResponse(o: AuthzOutcome): CheckResponseMsg {
  if (o.allow) {
    return { status: { code: GRPC_OK }, okResponse: { headers: options(o.headers), headersToRemove: o.removeHeaders } };
  }
  return {
    status: { code: o.status === 401 ? GRPC_UNAUTHENTICATED : GRPC_PERMISSION_DENIED },
    deniedResponse: { status: { code: o.status }, headers: options(o.headers), body: o.body },
  };
}
