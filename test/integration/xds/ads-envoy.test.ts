import { strict as assert } from 'node:assert';
import { adsBootstrap } from '../../../src/envoy/bootstrap.js';
import { dynamicClusters, dynamicEndpoints, dynamicListeners, dynamicRouteConfigs, httpFilterConfig } from '../../../src/envoy/config-dump.js';
import { AUTHZ_CLUSTER, LISTENER_NAME, ROUTE_CONFIG_NAME, sidecarResources, UPSTREAM_CLUSTER, type SidecarSpec } from '../../../src/envoy/resources.js';
import { startEnvoy, type RunningEnvoy } from '../../../src/envoy/run.js';
import { FilterName } from '../../../src/envoy/types.js';
import { makeSnapshot, SnapshotCache } from '../../../src/xds/cache.js';
import { AdsServer } from '../../../src/xds/server.js';
import { freePort } from '../../../src/util/net.js';
import { DECISION_ID, DENY_HEADER, eventually, http, startFakeAuthz, startUpstream, type FakeAuthz, type Upstream } from './harness.js';

/**
 * A real Envoy, bootstrapped with nothing but the ADS cluster, gets its whole MCP sidecar config
 * from our ADS server and then governs real traffic through a fake authz to a fake MCP server.
 */
describe('ADS → real Envoy: the governed MCP path', function () {
  this.timeout(60_000);

  const NODE = 'team-a/weather';
  const metadata = { resource: 'http://127.0.0.1/mcp', authorization_servers: ['http://127.0.0.1:5556'], bearer_methods_supported: ['header'] };
  let upstream: Upstream;
  let authz: FakeAuthz;
  let ads: AdsServer;
  let envoy: RunningEnvoy;
  let base: string;
  const cache = new SnapshotCache();

  before(async () => {
    upstream = await startUpstream();
    authz = await startFakeAuthz();
    const listenPort = await freePort();
    const spec: SidecarSpec = {
      nodeId: NODE, server: 'weather', namespace: 'team-a',
      listen: { host: '127.0.0.1', port: listenPort }, mcpPath: '/mcp',
      upstream: { host: '127.0.0.1', port: upstream.port },
      authz: { host: '127.0.0.1', port: authz.port, timeoutMs: 2000 },
      maxRequestBytes: 64 * 1024,
      resourceMetadata: metadata,
      extProc: true,
    };
    cache.setSnapshot(NODE, makeSnapshot(sidecarResources(spec), 'v1'));
    ads = await AdsServer.start({ cache });
    const adminPort = await freePort();
    envoy = await startEnvoy({
      config: adsBootstrap({ nodeId: NODE, cluster: 'team-a/weather', metadata: { server: 'weather', namespace: 'team-a', pod: 'weather-0' }, adminPort, xds: { host: '127.0.0.1', port: ads.port } }),
      adminPort, concurrency: 1,
    });
    base = `http://127.0.0.1:${listenPort}`;
  });

  after(async () => {
    await envoy?.stop();
    await ads?.stop();
    await authz?.stop();
    await upstream?.close();
  });

  const post = (body: string, headers: Record<string, string> = {}) => http(`${base}/mcp`, {
    method: 'POST', body, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
  });

  it('has every resource from the snapshot in /config_dump (Envoy LIVE, only ADS in its bootstrap)', async () => {
    const dump = await envoy.configDump({ includeEds: true });
    const listeners = dynamicListeners(dump);
    assert.deepEqual(listeners.map((l) => [l.name, l.versionInfo]), [[LISTENER_NAME, 'v1']]);
    assert.deepEqual(dynamicRouteConfigs(dump).map((r) => [r.name, r.versionInfo]), [[ROUTE_CONFIG_NAME, 'v1']]);
    assert.deepEqual(dynamicClusters(dump).map((c) => c.name).sort(), [AUTHZ_CLUSTER, UPSTREAM_CLUSTER].sort());
    assert.deepEqual(dynamicEndpoints(dump).map((e) => e.name).sort(), [AUTHZ_CLUSTER, UPSTREAM_CLUSTER].sort());
    const extAuthz = httpFilterConfig(listeners[0]!.config, FilterName.extAuthz);
    assert.ok(extAuthz, 'ext_authz filter is in the live listener');
    assert.equal(extAuthz.failure_mode_allow, undefined, 'fail closed (false is the proto default, so not dumped)');
    assert.deepEqual(extAuthz.with_request_body, { max_request_bytes: 64 * 1024, pack_as_bytes: true });
    const status = ads.status();
    assert.equal(status.streams.length, 1);
    assert.equal(status.streams[0]!.node?.id, NODE);
    assert.equal(status.streams[0]!.node?.metadata.pod, 'weather-0');
    assert.ok(status.streams[0]!.types.every((t) => t.ackedVersion === 'v1'), JSON.stringify(status.streams[0]!.types));
  });

  it('an allowed call reaches the MCP server with its body, a decision id and no caller token; the answer is the server\'s', async () => {
    const before = upstream.requests.length;
    const body = JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'forecast', arguments: { city: 'Oslo' } } });
    const res = await post(body, { authorization: 'Bearer caller-token' });
    assert.equal(res.status, 200, res.body);
    assert.deepEqual(JSON.parse(res.body), { jsonrpc: '2.0', id: 7, result: { content: [{ type: 'text', text: 'hello from upstream' }] } });
    assert.equal(res.headers.get('x-upstream'), 'yes');
    assert.equal(res.headers.get('server'), 'test-mcp', 'server header passed through');
    assert.equal(res.headers.get('x-envoy-upstream-service-time'), null, 'no envoy headers added');

    assert.equal(upstream.requests.length, before + 1);
    const seen = upstream.requests.at(-1)!;
    assert.equal(seen.body, body);
    assert.equal(seen.headers.authorization, undefined, 'token stripped before the MCP server');
    assert.match(String(seen.headers[DECISION_ID]), /^d-\d+$/);

    const check = authz.checks.at(-1)!;
    assert.equal(check.rawBody, body, 'authz got the whole body as bytes');
    assert.deepEqual(check.contextExtensions, { server: 'weather', namespace: 'team-a' });
    assert.equal(check.path, '/mcp');
  });

  it('ext_proc sees the decision id and the whole JSON response, and does not touch it', async () => {
    const res = await post(JSON.stringify({ jsonrpc: '2.0', id: 8, method: 'tools/list' }));
    assert.equal(res.status, 200);
    const decision = upstream.requests.at(-1)!.headers[DECISION_ID];
    const seen = await eventually('ext_proc to see the end of the response', () => authz.processed.find((p) => p.decisionId === decision && p.ended));
    assert.equal(seen.contentType, 'application/json');
    assert.equal(seen.body, res.body);
  });

  it('a GET opens an SSE stream that ext_proc gets in pieces (STREAMED)', async () => {
    const res = await http(`${base}/mcp`, { headers: { accept: 'text/event-stream' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    assert.equal(res.body.split('event: message').length - 1, 3);
    const decision = upstream.requests.at(-1)!.headers[DECISION_ID];
    const seen = await eventually('ext_proc to see the end of the stream', () => authz.processed.find((p) => p.decisionId === decision && p.ended));
    assert.equal(seen.body, res.body);
    assert.ok(seen.chunks >= 2, `streamed in ${seen.chunks} chunk(s)`);
  });

  it('a denial reaches the client with the status, headers and body authz chose, and never the MCP server', async () => {
    const before = upstream.requests.length;
    const res = await post(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'rm' } }), { [DENY_HEADER]: '1' });
    assert.equal(res.status, 429);
    assert.equal(res.headers.get('x-deny-reason'), 'test says no');
    assert.equal(res.headers.get('content-type'), 'application/json');
    assert.deepEqual(JSON.parse(res.body), { jsonrpc: '2.0', id: 1, error: { code: -32001, message: 'denied by test' } });
    assert.equal(upstream.requests.length, before);
    // The denial, a local reply, still goes out through ext_proc, which sees no request headers for it.
    const seen = await eventually('ext_proc to see the denial', () => authz.processed.find((p) => p.ended && p.body === res.body));
    assert.equal(seen.decisionId, null);
  });

  it('serves RFC 9728 metadata without asking authz', async () => {
    const checks = authz.checks.length;
    for (const path of ['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-protected-resource']) {
      const res = await http(base + path);
      assert.equal(res.status, 200, path);
      assert.equal(res.headers.get('content-type'), 'application/json');
      assert.deepEqual(JSON.parse(res.body), metadata);
    }
    assert.equal(authz.checks.length, checks);
  });

  it('answers 404 elsewhere without asking authz or the MCP server', async () => {
    const checks = authz.checks.length;
    const reqs = upstream.requests.length;
    const res = await http(`${base}/admin`, { method: 'POST', body: '{}' });
    assert.equal(res.status, 404);
    const sub = await http(`${base}/mcpx`);
    assert.equal(sub.status, 404, '/mcpx is not under /mcp');
    assert.equal(authz.checks.length, checks);
    assert.equal(upstream.requests.length, reqs);
  });

  it('refuses a body over max_request_bytes with 413 before authz and the MCP server', async () => {
    const checks = authz.checks.length;
    const reqs = upstream.requests.length;
    const big = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'x', arguments: { blob: 'a'.repeat(70 * 1024) } } });
    const res = await post(big);
    assert.equal(res.status, 413);
    assert.equal(authz.checks.length, checks);
    assert.equal(upstream.requests.length, reqs);
  });

  it('fails closed: with authz down, calls are denied and the MCP server is not reached', async () => {
    const reqs = upstream.requests.length;
    await authz.stop();
    try {
      const res = await post(JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'forecast' } }));
      // ext_authz answers 503 (status_on_error), but that local reply then passes ext_proc on its way
      // out, which cannot reach authz either and, failing closed too, turns it into a 500.
      assert.equal(res.status, 500);
      const stats = await envoy.admin('/stats?filter=ext_authz.tollgate.error');
      assert.match(stats, /http\.tollgate_mcp\.ext_authz\.tollgate\.error: [1-9]/);
      assert.equal(upstream.requests.length, reqs);
    } finally {
      await authz.restart();
    }
    const ok = await eventually('authz back', async () => (await post(JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'ping' }))).status === 200);
    assert.equal(ok, true);
  });
});
