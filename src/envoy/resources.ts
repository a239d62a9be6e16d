import { isIP } from 'node:net';
import type { JsonObject, JsonValue } from './protojson.js';
import { atType, EnvoyType, FilterName } from './types.js';

/** Everything the sidecar of one governed MCP server needs to know. */
export interface SidecarSpec {
  /** Envoy node id (`node.id` in the bootstrap); the ADS server keys snapshots by it. */
  nodeId: string;
  /** Name of the governed MCP server; reaches authz as the ext_authz context extension `server`. */
  server: string;
  /** Its namespace; reaches authz as the context extension `namespace`. */
  namespace: string;
  /** Where Envoy listens for MCP clients (127.0.0.1:10000 locally). */
  listen: HostPort;
  /** The MCP endpoint path, e.g. `/mcp`: starts with `/`, no trailing `/`, no `?` or `#`. */
  mcpPath: string;
  /** The MCP server container. */
  upstream: HostPort;
  /** Tollgate authz: ext_authz and ext_proc on one gRPC port, reached over HTTP/2. */
  authz: HostPort & {
    /** Deadline of each ext_authz Check; past it the request is denied (fail closed). */
    timeoutMs: number;
    /** Deadline of each ext_proc message (response accounting); defaults to timeoutMs. */
    extProcMessageTimeoutMs?: number;
    /** HTTP status the client gets when authz cannot be reached or times out. Default 503. */
    statusOnError?: number;
    /**
     * Reach authz over mTLS: Envoy presents its workload certificate and accepts only a server
     * certificate with this SPIFFE ID. Needs the bootstrap's workload secrets (adsBootstrap `tls`).
     * Unset: plaintext, for authz on the pod's loopback.
     */
    tlsIdentity?: string;
  };
  /** Largest request body buffered for ext_authz; bigger bodies get 413 and never reach authz. */
  maxRequestBytes: number;
  /**
   * Largest response Envoy will buffer for ext_proc should authz ask for BUFFERED mode on a
   * response (default 8 MiB, authz's own parse limit). Applied as the listener's per-connection
   * buffer limit, which is what bounds Envoy's per-stream buffering.
   */
  maxResponseBytes?: number;
  /** RFC 9728 protected-resource metadata served at /.well-known/oauth-protected-resource<mcpPath>. */
  resourceMetadata: Record<string, unknown>;
  /** Response accounting through ext_proc. */
  extProc: boolean;
  /** Deadline for a whole non-GET exchange with the MCP server; unset: none (tool calls can be slow). */
  upstreamTimeoutMs?: number;
  /**
   * An open stream to the MCP server (SSE) with no bytes either way for this long is closed.
   * Default one hour: an MCP server may send nothing for minutes. Set on the two MCP routes; the
   * connection manager's own stream idle timeout (requests not yet routed, Envoy's own answers) is
   * the shorter of this and HCM_STREAM_IDLE_TIMEOUT_MS.
   */
  streamIdleTimeoutMs?: number;
  /**
   * Limits against slow and idle clients (slowloris): request headers must arrive within
   * `requestHeadersTimeoutMs` of their first byte, the whole request within `requestTimeoutMs`, a
   * connection with no request in flight is closed after `connectionIdleTimeoutMs`, and the
   * listener holds at most `maxConnections` client connections (more are closed at once).
   * Defaults: DEFAULT_DOWNSTREAM_LIMITS.
   */
  downstream?: Partial<DownstreamLimits>;
  /**
   * Envoy's own spans (one per MCP request, one per ext_authz Check) exported over OTLP/gRPC to
   * this OpenTelemetry Collector, in the trace the client started; the Check span's context reaches
   * authz in the gRPC metadata, so authz's span is its child. Unset: Envoy does not trace.
   */
  tracing?: SidecarTracing;
}

export interface SidecarTracing {
  /** OTLP/gRPC endpoint of the collector (port 4317 by convention). */
  collector: HostPort;
  /** Percentage of new traces (no sampled parent) Envoy samples; default 100. */
  samplePercent?: number;
}

export interface HostPort { host: string; port: number }

export interface DownstreamLimits {
  requestHeadersTimeoutMs: number;
  requestTimeoutMs: number;
  connectionIdleTimeoutMs: number;
  maxConnections: number;
}

/**
 * What the MCP listener allows a client, after Envoy's edge-proxy best practices. Every MCP
 * request is small and complete (the body is buffered for ext_authz anyway), so a client that
 * cannot send its headers in 10 s, or its whole request in 60 s, is not a client. MCP clients drop
 * idle keep-alive connections within seconds themselves; an open SSE stream is an active request
 * and never counts as idle. 4096 connections per sidecar, each with at most one upstream
 * connection, stays well below the file descriptor limit of an Envoy process.
 */
export const DEFAULT_DOWNSTREAM_LIMITS: Readonly<DownstreamLimits> = Object.freeze({
  requestHeadersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
  connectionIdleTimeoutMs: 60_000,
  maxConnections: 4096,
});

/** The connection manager's stream idle timeout (Envoy's own default); MCP routes override it. */
export const HCM_STREAM_IDLE_TIMEOUT_MS = 5 * 60 * 1000;

/**
 * Downstream HTTP/2 (codec AUTO accepts h2c with prior knowledge): Envoy's edge values, so one
 * connection cannot open unbounded streams or make Envoy buffer megabytes per stream.
 */
export const DOWNSTREAM_HTTP2_OPTIONS: Readonly<JsonObject> = Object.freeze({
  max_concurrent_streams: 100,
  initial_stream_window_size: 64 * 1024,
  initial_connection_window_size: 1024 * 1024,
});

/** The four xDS resource kinds, as proto3 JSON (what Envoy reads from a file; packable into Any). */
export interface EnvoyResources {
  listeners: JsonObject[];
  routes: JsonObject[];
  clusters: JsonObject[];
  endpoints: JsonObject[];
}

/**
 * `ads`: routes and endpoints are separate resources (RDS, EDS over ADS) — what the control plane
 * serves. `static`: routes inline in the listener, endpoints inline in the clusters — for a
 * bootstrap file that needs no control plane.
 */
export type ResourceMode = 'ads' | 'static';

export const LISTENER_NAME = 'tollgate_mcp';
export const ROUTE_CONFIG_NAME = 'tollgate_mcp_routes';
export const UPSTREAM_CLUSTER = 'tollgate_mcp_upstream';
export const AUTHZ_CLUSTER = 'tollgate_authz';
export const OTEL_COLLECTOR_CLUSTER = 'tollgate_otel_collector';
export const PROTECTED_RESOURCE_PREFIX = '/.well-known/oauth-protected-resource';

export const DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024;
export const DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024;
export const DEFAULT_STREAM_IDLE_TIMEOUT_MS = 60 * 60 * 1000;
const DEFAULT_STATUS_ON_ERROR = 503;

/** Envoy's HttpStatus enum names for the statuses that make sense when authz is unreachable. */
const STATUS_NAMES: Readonly<Record<number, string>> = {
  403: 'Forbidden', 500: 'InternalServerError', 502: 'BadGateway', 503: 'ServiceUnavailable', 504: 'GatewayTimeout',
};

/** Envoy duration string ("0.250s") from milliseconds; 0 means "disabled" where Envoy allows it. */
export function duration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) throw new Error(`invalid duration ${ms} ms`);
  const whole = Math.floor(ms / 1000);
  const frac = Math.round(ms % 1000);
  return frac === 0 ? `${whole}s` : `${whole}.${String(frac).padStart(3, '0')}s`;
}

/** Throws a message naming the field when the spec cannot produce a working sidecar. */
export function validateSpec(spec: SidecarSpec): void {
  const problems: string[] = [];
  const port = (name: string, hp: HostPort): void => {
    if (!hp.host) problems.push(`${name}.host is empty`);
    if (!Number.isInteger(hp.port) || hp.port < 1 || hp.port > 65535) problems.push(`${name}.port ${hp.port} is not 1-65535`);
  };
  if (!spec.nodeId) problems.push('nodeId is empty');
  if (!spec.server) problems.push('server is empty');
  if (!spec.namespace) problems.push('namespace is empty');
  port('listen', spec.listen);
  port('upstream', spec.upstream);
  port('authz', spec.authz);
  if (!/^\/[^?#]*[^?#/]$/.test(spec.mcpPath)) problems.push(`mcpPath "${spec.mcpPath}" must start with "/", not end with "/", and have no "?" or "#"`);
  if (!(spec.authz.timeoutMs > 0)) problems.push('authz.timeoutMs must be > 0');
  if (spec.authz.extProcMessageTimeoutMs !== undefined && !(spec.authz.extProcMessageTimeoutMs > 0)) problems.push('authz.extProcMessageTimeoutMs must be > 0');
  const status = spec.authz.statusOnError;
  if (status !== undefined && !(status in STATUS_NAMES)) problems.push(`authz.statusOnError ${status} is not one of ${Object.keys(STATUS_NAMES).join(', ')}`);
  if (!Number.isInteger(spec.maxRequestBytes) || spec.maxRequestBytes < 1 || spec.maxRequestBytes > 0xffffffff) problems.push('maxRequestBytes must be a positive 32-bit integer');
  if (spec.maxResponseBytes !== undefined && !(Number.isInteger(spec.maxResponseBytes) && spec.maxResponseBytes > 0)) problems.push('maxResponseBytes must be a positive integer');
  if (spec.upstreamTimeoutMs !== undefined && !(spec.upstreamTimeoutMs > 0)) problems.push('upstreamTimeoutMs must be > 0 (leave unset for none)');
  if (spec.streamIdleTimeoutMs !== undefined && !(spec.streamIdleTimeoutMs > 0)) problems.push('streamIdleTimeoutMs must be > 0');
  for (const [k, v] of Object.entries(spec.downstream ?? {})) {
    if (!(k in DEFAULT_DOWNSTREAM_LIMITS)) problems.push(`downstream.${k} is not a known limit`);
    else if (!(Number.isInteger(v) && v > 0)) problems.push(`downstream.${k} must be a positive integer`);
  }
  if (spec.tracing) {
    port('tracing.collector', spec.tracing.collector);
    const pct = spec.tracing.samplePercent;
    if (pct !== undefined && !(pct >= 0 && pct <= 100)) problems.push(`tracing.samplePercent ${pct} is not 0-100`);
  }
  if (problems.length) throw new Error(`invalid sidecar spec for ${spec.namespace}/${spec.server}: ${problems.join('; ')}`);
}

function socketAddress({ host, port }: HostPort): JsonObject {
  return { socket_address: { address: host, port_value: port } };
}

/** An IP address can be an EDS / STATIC endpoint; a DNS name needs Envoy to resolve it. */
function loadAssignment(cluster: string, target: HostPort): JsonObject {
  return {
    cluster_name: cluster,
    endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress(target) } }] }],
  };
}

function cluster(name: string, target: HostPort, mode: ResourceMode, connectTimeoutMs: number): JsonObject {
  const base: JsonObject = { name, connect_timeout: duration(connectTimeoutMs) };
  if (!isIP(target.host)) {
    return { ...base, type: 'STRICT_DNS', dns_lookup_family: 'V4_PREFERRED', load_assignment: loadAssignment(name, target) };
  }
  if (mode === 'static') return { ...base, type: 'STATIC', load_assignment: loadAssignment(name, target) };
  return { ...base, type: 'EDS', eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' } } };
}

/** Upstream HTTP/2 for a gRPC cluster (authz, control plane). */
export function http2ProtocolOptions(maxRequestsPerConnection?: number): JsonObject {
  return {
    [EnvoyType.httpProtocolOptions]: {
      '@type': atType(EnvoyType.httpProtocolOptions),
      explicit_http_config: { http2_protocol_options: {} },
      ...(maxRequestsPerConnection ? { common_http_protocol_options: { max_requests_per_connection: maxRequestsPerConnection } } : {}),
    },
  };
}

/**
 * Envoy's ext_proc resets its side stream when each request ends, and Node's HTTP/2 server
 * treats ~1,000 fast resets on one connection as a rapid-reset attack and sends GOAWAY, which
 * refuses whatever stream is then in flight (a fail-closed 503 for an innocent call). Envoy
 * rotates the connection well before that count.
 */
export const AUTHZ_MAX_REQUESTS_PER_CONNECTION = 500;

/** Static secrets every TLS-enabled bootstrap defines; dynamic resources refer to them by name. */
export const WORKLOAD_CERT_SECRET = 'tollgate_workload_cert';
export const MESH_CA_SECRET = 'tollgate_mesh_ca';

/**
 * An upstream TLS transport socket: the workload certificate as client certificate, the mesh CA,
 * and the one SPIFFE ID the server must present. gRPC needs ALPN h2.
 */
export function meshTlsTransportSocket(serverIdentity: string, sni?: string, certSdsFile?: string): JsonObject {
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': atType(EnvoyType.upstreamTlsContext),
      ...(sni ? { sni } : {}),
      common_tls_context: {
        alpn_protocols: ['h2'],
        // From a file-based SDS source when given: Envoy re-reads it and the files it names when
        // they are replaced, so a renewed certificate is used from the next handshake on.
        tls_certificate_sds_secret_configs: [certSdsFile
          ? { name: WORKLOAD_CERT_SECRET, sds_config: { path_config_source: { path: certSdsFile }, resource_api_version: 'V3' } }
          : { name: WORKLOAD_CERT_SECRET }],
        combined_validation_context: {
          default_validation_context: { match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: serverIdentity } }] },
          validation_context_sds_secret_config: { name: MESH_CA_SECRET },
        },
      },
    },
  };
}

function authzCluster(spec: SidecarSpec, mode: ResourceMode): JsonObject {
  return {
    ...cluster(AUTHZ_CLUSTER, spec.authz, mode, 1000),
    ...(spec.authz.tlsIdentity ? { transport_socket: meshTlsTransportSocket(spec.authz.tlsIdentity) } : {}),
    typed_extension_protocol_options: http2ProtocolOptions(AUTHZ_MAX_REQUESTS_PER_CONNECTION),
    // Every open SSE stream holds an ext_proc stream on this cluster; Envoy's default of 1024
    // concurrent requests would start failing (closed) long before authz is actually busy.
    circuit_breakers: {
      thresholds: [{ priority: 'DEFAULT', max_connections: 1024, max_pending_requests: 65536, max_requests: 65536, max_retries: 3 }],
    },
  };
}

function extAuthzFilter(spec: SidecarSpec): JsonObject {
  const status = STATUS_NAMES[spec.authz.statusOnError ?? DEFAULT_STATUS_ON_ERROR] ?? 'ServiceUnavailable';
  return {
    name: FilterName.extAuthz,
    typed_config: {
      '@type': atType(EnvoyType.extAuthz),
      grpc_service: { envoy_grpc: { cluster_name: AUTHZ_CLUSTER }, timeout: duration(spec.authz.timeoutMs) },
      transport_api_version: 'V3',
      // Fail closed: authz down, slow or erroring is a denial, never a pass.
      failure_mode_allow: false,
      status_on_error: { code: status },
      // The whole JSON-RPC body goes to authz as raw bytes; a truncated body would be guessed at,
      // so bodies over the limit are refused (413) instead of sent partially.
      with_request_body: { max_request_bytes: spec.maxRequestBytes, allow_partial_message: false, pack_as_bytes: true },
      include_peer_certificate: false,
      stat_prefix: 'tollgate',
    },
  };
}

/**
 * Response processing for accounting. Request headers are sent so authz sees the
 * `x-tollgate-decision-id` that ext_authz put on the request; request bodies never are (ext_authz
 * already saw them).
 *
 * Response bodies are STREAMED, for JSON as well as SSE. Envoy cannot choose the mode by the
 * response's content type, and a POST may be answered with either; BUFFERED would hold an SSE
 * answer (progress notifications, long tool calls) back until the stream ends, and a GET stream
 * never ends. Authz holds JSON chunks itself when it needs the whole document (list filtering),
 * and `allow_mode_override` lets it ask for BUFFERED per response, from the response headers, if
 * it prefers Envoy to do the buffering (bounded by the listener's buffer limit, maxResponseBytes).
 */
const PROCESSING_MODE: JsonObject = {
  request_header_mode: 'SEND',
  response_header_mode: 'SEND',
  request_body_mode: 'NONE',
  response_body_mode: 'STREAMED',
  request_trailer_mode: 'SKIP',
  response_trailer_mode: 'SKIP',
};

function extProcFilter(spec: SidecarSpec): JsonObject {
  return {
    name: FilterName.extProc,
    typed_config: {
      '@type': atType(EnvoyType.extProc),
      // No grpc_service timeout: it would bound the whole ext_proc stream, i.e. the life of an SSE
      // response. Each message is bounded by message_timeout instead.
      grpc_service: { envoy_grpc: { cluster_name: AUTHZ_CLUSTER } },
      failure_mode_allow: false,
      processing_mode: PROCESSING_MODE,
      allow_mode_override: true,
      message_timeout: duration(spec.authz.extProcMessageTimeoutMs ?? spec.authz.timeoutMs),
      stat_prefix: 'tollgate',
    },
  };
}

function routerFilter(): JsonObject {
  // No x-envoy-* headers on the upstream's response: the MCP client sees the server's answer as is.
  return { name: FilterName.router, typed_config: { '@type': atType(EnvoyType.router), suppress_envoy_headers: true } };
}

export function httpFilters(spec: SidecarSpec): JsonObject[] {
  return spec.extProc ? [extAuthzFilter(spec), extProcFilter(spec), routerFilter()] : [extAuthzFilter(spec), routerFilter()];
}

/** Per-route filter config that switches off authz (and accounting) for responses Envoy makes itself. */
function noAuthz(spec: SidecarSpec): JsonObject {
  const cfg: JsonObject = { [FilterName.extAuthz]: { '@type': atType(EnvoyType.extAuthzPerRoute), disabled: true } };
  if (spec.extProc) cfg[FilterName.extProc] = { '@type': atType(EnvoyType.extProcPerRoute), disabled: true };
  return cfg;
}

/** Tells authz which governed server a call is for (CheckRequest.attributes.context_extensions). */
function governed(spec: SidecarSpec): JsonObject {
  return {
    [FilterName.extAuthz]: {
      '@type': atType(EnvoyType.extAuthzPerRoute),
      check_settings: { context_extensions: { server: spec.server, namespace: spec.namespace } },
    },
  };
}

function directResponse(name: string, match: JsonObject, status: number, body: string, contentType: string, spec: SidecarSpec): JsonObject {
  return {
    name,
    match,
    direct_response: { status, body: { inline_string: body } },
    response_headers_to_add: [{ header: { key: 'content-type', value: contentType }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
    typed_per_filter_config: noAuthz(spec),
  };
}

/**
 * Routes, most specific first: protected-resource metadata (no authz: a client needs it to learn
 * how to get a token), GET streams on the MCP path, every other method on it, then 404.
 */
export function routeConfiguration(spec: SidecarSpec): JsonObject {
  const metadata = JSON.stringify(spec.resourceMetadata);
  const idle = duration(spec.streamIdleTimeoutMs ?? DEFAULT_STREAM_IDLE_TIMEOUT_MS);
  const mcpMatch = { path_separated_prefix: spec.mcpPath };
  const routes: JsonValue[] = [
    directResponse('protected-resource-metadata', { path: PROTECTED_RESOURCE_PREFIX + spec.mcpPath }, 200, metadata, 'application/json', spec),
    directResponse('protected-resource-metadata-root', { path: PROTECTED_RESOURCE_PREFIX }, 200, metadata, 'application/json', spec),
    {
      // A GET opens a server-to-client SSE stream that may stay open for hours: no overall timeout.
      name: 'mcp-stream',
      match: { ...mcpMatch, headers: [{ name: ':method', string_match: { exact: 'GET' } }] },
      route: { cluster: UPSTREAM_CLUSTER, timeout: '0s', idle_timeout: idle },
      typed_per_filter_config: governed(spec),
    },
    {
      // POST answers may also be SSE, so the default is no overall timeout here either.
      name: 'mcp',
      match: mcpMatch,
      route: { cluster: UPSTREAM_CLUSTER, timeout: duration(spec.upstreamTimeoutMs ?? 0), idle_timeout: idle },
      typed_per_filter_config: governed(spec),
    },
    directResponse('not-found', { prefix: '/' }, 404, '{"error":"not_found"}', 'application/json', spec),
  ];
  return {
    name: ROUTE_CONFIG_NAME,
    virtual_hosts: [{ name: 'mcp', domains: ['*'], routes }],
    max_direct_response_body_size_bytes: Math.max(4096, Buffer.byteLength(metadata) + 1024),
  };
}

/**
 * HCM tracing with Envoy's OpenTelemetry tracer. Envoy continues a sampled `traceparent` from the
 * client and otherwise samples `samplePercent` of new traces; its spans go to the collector.
 */
function tracingConfig(t: SidecarTracing, spec: SidecarSpec): JsonObject {
  const pct = t.samplePercent ?? 100;
  return {
    provider: {
      name: 'envoy.tracers.opentelemetry',
      typed_config: {
        '@type': atType(EnvoyType.openTelemetryConfig),
        grpc_service: { envoy_grpc: { cluster_name: OTEL_COLLECTOR_CLUSTER }, timeout: '1s' },
        service_name: `tollgate-envoy ${spec.namespace}/${spec.server}`,
      },
    },
    random_sampling: { value: pct },
    client_sampling: { value: 100 },
    overall_sampling: { value: 100 },
    // Envoy names a traced request by its route; a fixed tag says which governed server it was.
    custom_tags: [{ tag: 'tollgate.server', literal: { value: spec.server } }],
  };
}

/** The spec's downstream limits over the defaults. */
export function downstreamLimits(spec: SidecarSpec): DownstreamLimits {
  return { ...DEFAULT_DOWNSTREAM_LIMITS, ...spec.downstream };
}

/** Closes every connection past `max` on its listener as soon as it is accepted. */
export function connectionLimitFilter(statPrefix: string, max: number): JsonObject {
  return {
    name: FilterName.connectionLimit,
    typed_config: { '@type': atType(EnvoyType.connectionLimit), stat_prefix: statPrefix, max_connections: max },
  };
}

function httpConnectionManager(spec: SidecarSpec, mode: ResourceMode): JsonObject {
  const limits = downstreamLimits(spec);
  const routeSource: JsonObject = mode === 'ads'
    ? { rds: { route_config_name: ROUTE_CONFIG_NAME, config_source: { ads: {}, resource_api_version: 'V3' } } }
    : { route_config: routeConfiguration(spec) };
  return {
    '@type': atType(EnvoyType.httpConnectionManager),
    stat_prefix: 'tollgate_mcp',
    codec_type: 'AUTO',
    ...routeSource,
    http_filters: httpFilters(spec),
    // Routing and authz must see the same path the upstream will: normalise, and refuse %2F tricks.
    normalize_path: true,
    merge_slashes: true,
    path_with_escaped_slashes_action: 'REJECT_REQUEST',
    // The sidecar is the pod's edge: client-supplied X-Forwarded-For is not trusted.
    use_remote_address: true,
    server_header_transformation: 'PASS_THROUGH',
    // Both MCP routes set their own idle timeout (streamIdleTimeoutMs, long: SSE); this one covers a
    // stream before it is routed and Envoy's own answers.
    stream_idle_timeout: duration(Math.min(HCM_STREAM_IDLE_TIMEOUT_MS, spec.streamIdleTimeoutMs ?? DEFAULT_STREAM_IDLE_TIMEOUT_MS)),
    // Slowloris: headers trickled in (the timer starts at their first byte) or a body trickled in
    // end with a 408; neither timer runs once the request is complete, so SSE streams are unaffected.
    request_headers_timeout: duration(limits.requestHeadersTimeoutMs),
    request_timeout: duration(limits.requestTimeoutMs),
    common_http_protocol_options: {
      // A connection with no request in flight, including one that never sent a byte.
      idle_timeout: duration(limits.connectionIdleTimeoutMs),
      // `x_tollgate_decision_id` must not reach an upstream that reads `_` as `-` behind authz's back.
      headers_with_underscores_action: 'REJECT_REQUEST',
    },
    http2_protocol_options: { ...DOWNSTREAM_HTTP2_OPTIONS },
    ...(spec.tracing ? { tracing: tracingConfig(spec.tracing, spec) } : {}),
  };
}

export function listener(spec: SidecarSpec, mode: ResourceMode): JsonObject {
  return {
    name: LISTENER_NAME,
    address: socketAddress(spec.listen),
    traffic_direction: 'INBOUND',
    // Without SO_REUSEPORT a port something else holds is a bind error (LDS rejected), never a
    // port quietly shared with another process that then answers some of the MCP clients.
    enable_reuse_port: false,
    // Bounds what Envoy buffers per stream: a response authz asks to have BUFFERED for ext_proc.
    // ext_authz enforces its own request limit (max_request_bytes) within it.
    per_connection_buffer_limit_bytes: Math.max(spec.maxRequestBytes, spec.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES),
    filter_chains: [{
      filters: [
        // Past maxConnections a connection is closed on accept: a flood costs no file descriptors.
        // The bootstrap's overload manager caps the whole process as well (bootstrap.ts).
        connectionLimitFilter('tollgate_mcp', downstreamLimits(spec).maxConnections),
        { name: FilterName.httpConnectionManager, typed_config: httpConnectionManager(spec, mode) },
      ],
    }],
  };
}

/** All resources of one sidecar. Validates the spec first. */
export function sidecarResources(spec: SidecarSpec, mode: ResourceMode = 'ads'): EnvoyResources {
  validateSpec(spec);
  const clusters = [cluster(UPSTREAM_CLUSTER, spec.upstream, mode, 5000), authzCluster(spec, mode)];
  const targets: Array<readonly [string, HostPort]> = [[UPSTREAM_CLUSTER, spec.upstream], [AUTHZ_CLUSTER, spec.authz]];
  if (spec.tracing) {
    // OTLP/gRPC needs HTTP/2 to the collector.
    clusters.push({ ...cluster(OTEL_COLLECTOR_CLUSTER, spec.tracing.collector, mode, 1000), typed_extension_protocol_options: http2ProtocolOptions() });
    targets.push([OTEL_COLLECTOR_CLUSTER, spec.tracing.collector]);
  }
  const endpoints = mode === 'ads'
    ? targets
        .filter(([, hp]) => isIP(hp.host))
        .map(([name, hp]) => loadAssignment(name, hp))
    : [];
  return {
    listeners: [listener(spec, mode)],
    routes: mode === 'ads' ? [routeConfiguration(spec)] : [],
    clusters,
    endpoints,
  };
}
