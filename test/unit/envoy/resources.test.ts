import { strict as assert } from 'node:assert';
import type { JsonObject } from '../../../src/envoy/protojson.js';
import { packAny, unpackAny } from '../../../src/envoy/protojson.js';
import {
  AUTHZ_CLUSTER, DEFAULT_DOWNSTREAM_LIMITS, duration, LISTENER_NAME, ROUTE_CONFIG_NAME, sidecarResources, UPSTREAM_CLUSTER, validateSpec,
  type SidecarSpec,
} from '../../../src/envoy/resources.js';
import { EnvoyType, FilterName } from '../../../src/envoy/types.js';

const spec: SidecarSpec = {
  nodeId: 'team-a/weather', server: 'weather', namespace: 'team-a',
  listen: { host: '127.0.0.1', port: 10000 }, mcpPath: '/mcp',
  upstream: { host: '127.0.0.1', port: 3000 },
  authz: { host: '127.0.0.1', port: 9191, timeoutMs: 250 },
  maxRequestBytes: 1024 * 1024,
  resourceMetadata: { resource: 'http://127.0.0.1:10000/mcp', authorization_servers: ['http://127.0.0.1:5556'] },
  extProc: true,
};

type O = JsonObject;
const obj = (v: unknown): O => {
  assert.ok(typeof v === 'object' && v !== null && !Array.isArray(v), `expected an object, got ${JSON.stringify(v)}`);
  return v as O;
};
const arr = (v: unknown): O[] => {
  assert.ok(Array.isArray(v), `expected an array, got ${JSON.stringify(v)}`);
  return v as O[];
};

function networkFilter(listener: O, name: string): O {
  const f = arr(arr(listener.filter_chains)[0]!.filters).find((x) => x.name === name);
  assert.ok(f, `network filter ${name}`);
  return obj(f.typed_config);
}
function hcmOf(listener: O): O {
  return networkFilter(listener, FilterName.httpConnectionManager);
}
function filter(listener: O, name: string): O | undefined {
  const f = arr(hcmOf(listener).http_filters).find((h) => h.name === name);
  return f ? obj(f.typed_config) : undefined;
}
function route(routes: O, name: string): O {
  const r = arr(arr(routes.virtual_hosts)[0]!.routes).find((x) => x.name === name);
  assert.ok(r, `route ${name}`);
  return r;
}

describe('sidecar resources', () => {
  const r = sidecarResources(spec);
  const listener = r.listeners[0]!;
  const routes = r.routes[0]!;

  it('names one listener, one route configuration, the upstream and authz clusters and their endpoints', () => {
    assert.deepEqual(r.listeners.map((l) => l.name), [LISTENER_NAME]);
    assert.deepEqual(r.routes.map((x) => x.name), [ROUTE_CONFIG_NAME]);
    assert.deepEqual(r.clusters.map((c) => c.name), [UPSTREAM_CLUSTER, AUTHZ_CLUSTER]);
    assert.deepEqual(r.endpoints.map((e) => e.cluster_name), [UPSTREAM_CLUSTER, AUTHZ_CLUSTER]);
    assert.deepEqual(obj(listener.address), { socket_address: { address: '127.0.0.1', port_value: 10000 } });
    assert.deepEqual(obj(hcmOf(listener).rds).route_config_name, ROUTE_CONFIG_NAME);
  });

  it('puts ext_authz, ext_proc and the router in that order', () => {
    assert.deepEqual(arr(hcmOf(listener).http_filters).map((f) => f.name), [FilterName.extAuthz, FilterName.extProc, FilterName.router]);
    const noProc = sidecarResources({ ...spec, extProc: false });
    assert.deepEqual(arr(hcmOf(noProc.listeners[0]!).http_filters).map((f) => f.name), [FilterName.extAuthz, FilterName.router]);
  });

  it('configures ext_authz to fail closed, over gRPC v3, with the whole body as bytes', () => {
    const a = filter(listener, FilterName.extAuthz)!;
    assert.equal(a.failure_mode_allow, false);
    assert.equal(a.transport_api_version, 'V3');
    assert.deepEqual(a.grpc_service, { envoy_grpc: { cluster_name: AUTHZ_CLUSTER }, timeout: '0.250s' });
    assert.deepEqual(a.with_request_body, { max_request_bytes: 1024 * 1024, allow_partial_message: false, pack_as_bytes: true });
    assert.equal(a.include_peer_certificate, false);
    assert.deepEqual(a.status_on_error, { code: 'ServiceUnavailable' });
    assert.deepEqual(filter(sidecarResources({ ...spec, authz: { ...spec.authz, statusOnError: 403 } }).listeners[0]!, FilterName.extAuthz)!.status_on_error, { code: 'Forbidden' });
  });

  it('configures ext_proc for response accounting only, failing closed, with no deadline on the stream', () => {
    const p = filter(listener, FilterName.extProc)!;
    assert.equal(p.failure_mode_allow, false);
    assert.deepEqual(p.grpc_service, { envoy_grpc: { cluster_name: AUTHZ_CLUSTER } });
    assert.deepEqual(p.processing_mode, {
      request_header_mode: 'SEND', response_header_mode: 'SEND', request_body_mode: 'NONE',
      response_body_mode: 'STREAMED', request_trailer_mode: 'SKIP', response_trailer_mode: 'SKIP',
    });
    assert.equal(p.message_timeout, '0.250s');
  });

  it('tells authz which server a call is for, on every route that reaches the upstream', () => {
    for (const name of ['mcp', 'mcp-stream']) {
      const rt = route(routes, name);
      assert.equal(obj(rt.route).cluster, UPSTREAM_CLUSTER);
      const per = obj(obj(rt.typed_per_filter_config)[FilterName.extAuthz]);
      assert.equal(per['@type'], `type.googleapis.com/${EnvoyType.extAuthzPerRoute}`);
      assert.deepEqual(per.check_settings, { context_extensions: { server: 'weather', namespace: 'team-a' } });
    }
  });

  it('matches the MCP path exactly and below it, GET streams first, with no overall timeout by default', () => {
    const stream = route(routes, 'mcp-stream');
    assert.deepEqual(stream.match, { path_separated_prefix: '/mcp', headers: [{ name: ':method', string_match: { exact: 'GET' } }] });
    assert.deepEqual(stream.route, { cluster: UPSTREAM_CLUSTER, timeout: '0s', idle_timeout: '3600s' });
    const mcp = route(routes, 'mcp');
    assert.deepEqual(mcp.match, { path_separated_prefix: '/mcp' });
    assert.equal(obj(mcp.route).timeout, '0s');
    const timed = sidecarResources({ ...spec, upstreamTimeoutMs: 30_000, streamIdleTimeoutMs: 600_000 }).routes[0]!;
    assert.equal(obj(route(timed, 'mcp').route).timeout, '30s');
    assert.equal(obj(route(timed, 'mcp-stream').route).timeout, '0s', 'GET streams are never cut by the overall timeout');
    assert.equal(obj(route(timed, 'mcp-stream').route).idle_timeout, '600s');
  });

  it('serves the protected-resource metadata itself, as JSON, with authz and ext_proc off', () => {
    for (const [name, path] of [['protected-resource-metadata', '/.well-known/oauth-protected-resource/mcp'], ['protected-resource-metadata-root', '/.well-known/oauth-protected-resource']] as const) {
      const rt = route(routes, name);
      assert.deepEqual(rt.match, { path });
      assert.equal(obj(rt.direct_response).status, 200);
      assert.deepEqual(JSON.parse(String(obj(obj(rt.direct_response).body).inline_string)), spec.resourceMetadata);
      assert.deepEqual(arr(rt.response_headers_to_add)[0], { header: { key: 'content-type', value: 'application/json' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' });
      const per = obj(rt.typed_per_filter_config);
      assert.equal(obj(per[FilterName.extAuthz]).disabled, true);
      assert.equal(obj(per[FilterName.extProc]).disabled, true);
    }
  });

  it('ends with a 404 for everything else, without authz', () => {
    const all = arr(arr(routes.virtual_hosts)[0]!.routes);
    const last = all[all.length - 1]!;
    assert.equal(last.name, 'not-found');
    assert.deepEqual(last.match, { prefix: '/' });
    assert.equal(obj(last.direct_response).status, 404);
    assert.equal(obj(obj(last.typed_per_filter_config)[FilterName.extAuthz]).disabled, true);
  });

  it('talks HTTP/2 to authz and lets it hold many SSE streams', () => {
    const c = r.clusters.find((x) => x.name === AUTHZ_CLUSTER)!;
    const opts = obj(obj(c.typed_extension_protocol_options)[EnvoyType.httpProtocolOptions]);
    assert.deepEqual(opts.explicit_http_config, { http2_protocol_options: {} });
    assert.ok(Number(arr(obj(c.circuit_breakers).thresholds)[0]!.max_requests) > 1024);
  });

  it('uses EDS for IP endpoints over ADS, DNS for host names, inline everything in static mode', () => {
    assert.deepEqual(r.clusters.map((c) => c.type), ['EDS', 'EDS']);
    const dns = sidecarResources({ ...spec, authz: { ...spec.authz, host: 'tollgate-authz.tollgate-system.svc' } });
    assert.deepEqual(dns.clusters.map((c) => c.type), ['EDS', 'STRICT_DNS']);
    assert.deepEqual(dns.endpoints.map((e) => e.cluster_name), [UPSTREAM_CLUSTER]);
    const st = sidecarResources(spec, 'static');
    assert.deepEqual(st.clusters.map((c) => c.type), ['STATIC', 'STATIC']);
    assert.deepEqual(st.routes, []);
    assert.deepEqual(st.endpoints, []);
    assert.equal(obj(hcmOf(st.listeners[0]!).route_config).name, ROUTE_CONFIG_NAME);
  });

  it('produces only fields that exist in Envoy\'s protos (every resource packs into Any, both modes)', () => {
    for (const mode of ['ads', 'static'] as const) {
      const x = sidecarResources(spec, mode);
      for (const l of x.listeners) packAny(l, EnvoyType.listener);
      for (const rc of x.routes) packAny(rc, EnvoyType.routeConfiguration);
      for (const c of x.clusters) packAny(c, EnvoyType.cluster);
      for (const e of x.endpoints) packAny(e, EnvoyType.clusterLoadAssignment);
    }
    const back = unpackAny(packAny(listener, EnvoyType.listener));
    assert.equal(back.name, LISTENER_NAME);
  });

  it('holds slow and idle clients to edge-proxy limits, the same over ADS and in a static bootstrap', () => {
    const ads = sidecarResources(spec, 'ads').listeners[0]!;
    const st = sidecarResources(spec, 'static').listeners[0]!;
    for (const l of [ads, st]) {
      const hcm = hcmOf(l);
      assert.equal(hcm.request_headers_timeout, '10s');
      assert.equal(hcm.request_timeout, '60s');
      assert.deepEqual(hcm.common_http_protocol_options, { idle_timeout: '60s', headers_with_underscores_action: 'REJECT_REQUEST' });
      assert.deepEqual(hcm.http2_protocol_options, { max_concurrent_streams: 100, initial_stream_window_size: 65536, initial_connection_window_size: 1048576 });
      // Before routing and on Envoy's own answers: Envoy's 5 minutes. SSE keeps its hour on the MCP routes.
      assert.equal(hcm.stream_idle_timeout, '300s');
      const filters = arr(arr(l.filter_chains)[0]!.filters);
      assert.deepEqual(filters.map((f) => f.name), [FilterName.connectionLimit, FilterName.httpConnectionManager], 'the limit runs before the HCM');
      const limit = networkFilter(l, FilterName.connectionLimit);
      assert.equal(limit['@type'], `type.googleapis.com/${EnvoyType.connectionLimit}`);
      assert.equal(limit.max_connections, 4096);
      assert.deepEqual(DEFAULT_DOWNSTREAM_LIMITS, { requestHeadersTimeoutMs: 10_000, requestTimeoutMs: 60_000, connectionIdleTimeoutMs: 60_000, maxConnections: 4096 });
    }
    const staticRoutes = obj(hcmOf(st).route_config);
    assert.equal(obj(route(staticRoutes, 'mcp-stream').route).idle_timeout, '3600s');
    assert.equal(obj(route(staticRoutes, 'mcp').route).idle_timeout, '3600s');

    const tuned = sidecarResources({
      ...spec, streamIdleTimeoutMs: 120_000,
      downstream: { requestHeadersTimeoutMs: 1500, requestTimeoutMs: 20_000, connectionIdleTimeoutMs: 30_000, maxConnections: 100 },
    }).listeners[0]!;
    const hcm = hcmOf(tuned);
    assert.equal(hcm.request_headers_timeout, '1.500s');
    assert.equal(hcm.request_timeout, '20s');
    assert.equal(obj(hcm.common_http_protocol_options).idle_timeout, '30s');
    assert.equal(hcm.stream_idle_timeout, '120s', 'never longer than the routes\' own idle timeout');
    assert.equal(networkFilter(tuned, FilterName.connectionLimit).max_connections, 100);
    assert.throws(() => validateSpec({ ...spec, downstream: { maxConnections: 0, requestHeadersTimeoutMs: 2.5 } }), /downstream\.requestHeadersTimeoutMs.*downstream\.maxConnections|downstream\.maxConnections.*downstream\.requestHeadersTimeoutMs/);
    assert.throws(() => validateSpec({ ...spec, downstream: { bogus: 1 } as never }), /downstream\.bogus/);
  });

  it('refuses a spec that cannot work, naming every problem', () => {
    assert.throws(() => validateSpec({ ...spec, mcpPath: '/mcp/' }), /mcpPath/);
    assert.throws(() => validateSpec({ ...spec, mcpPath: 'mcp' }), /mcpPath/);
    assert.throws(() => validateSpec({ ...spec, listen: { host: '127.0.0.1', port: 70000 }, maxRequestBytes: 0 }), /listen\.port.*maxRequestBytes/);
    assert.throws(() => validateSpec({ ...spec, authz: { ...spec.authz, timeoutMs: 0 } }), /authz\.timeoutMs/);
    assert.throws(() => validateSpec({ ...spec, authz: { ...spec.authz, statusOnError: 418 } }), /statusOnError/);
    assert.doesNotThrow(() => validateSpec({ ...spec, mcpPath: '/v1/mcp' }));
  });

  it('writes durations the way Envoy reads them', () => {
    assert.equal(duration(0), '0s');
    assert.equal(duration(250), '0.250s');
    assert.equal(duration(1500), '1.500s');
    assert.equal(duration(3_600_000), '3600s');
    assert.throws(() => duration(-1));
  });
});

describe('authz cluster connection rotation', () => {
  it('caps requests per HTTP/2 connection below Node\'s rapid-reset threshold', async () => {
    const { sidecarResources, AUTHZ_CLUSTER, AUTHZ_MAX_REQUESTS_PER_CONNECTION } = await import('../../../src/envoy/resources.js');
    const spec = {
      nodeId: 'n', server: 's', namespace: 'ns', listen: { host: '127.0.0.1', port: 10000 }, mcpPath: '/mcp',
      upstream: { host: '127.0.0.1', port: 3001 }, authz: { host: '127.0.0.1', port: 9191, timeoutMs: 1000 },
      maxRequestBytes: 1024, resourceMetadata: {}, extProc: true,
    };
    const authz = sidecarResources(spec, 'static').clusters.find((c) => c.name === AUTHZ_CLUSTER)!;
    const opts = JSON.stringify(authz.typed_extension_protocol_options);
    assert.ok(AUTHZ_MAX_REQUESTS_PER_CONNECTION < 1000);
    assert.match(opts, new RegExp(`"max_requests_per_connection":${AUTHZ_MAX_REQUESTS_PER_CONNECTION}`));
  });
});
