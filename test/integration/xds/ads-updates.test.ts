import { strict as assert } from 'node:assert';
import { adsBootstrap } from '../../../src/envoy/bootstrap.js';
import { acceptedVersion, dynamicListeners, httpFilterConfig } from '../../../src/envoy/config-dump.js';
import type { JsonObject } from '../../../src/envoy/protojson.js';
import { sidecarResources, type EnvoyResources, type SidecarSpec } from '../../../src/envoy/resources.js';
import { startEnvoy, type RunningEnvoy } from '../../../src/envoy/run.js';
import { FilterName, ResourceTypeUrl } from '../../../src/envoy/types.js';
import { makeSnapshot, SnapshotCache } from '../../../src/xds/cache.js';
import { AdsServer, type NackRecord } from '../../../src/xds/server.js';
import { freePort } from '../../../src/util/net.js';
import { eventually, http, startFakeAuthz, startUpstream, type FakeAuthz, type Upstream } from './harness.js';

/** Config changes pushed over ADS to a running Envoy: applied live, or rejected and reported. */
describe('ADS → real Envoy: live updates and NACKs', function () {
  this.timeout(90_000);

  const NODE = 'team-b/tickets';
  let upstream: Upstream;
  let authz: FakeAuthz;
  let ads: AdsServer;
  let envoy: RunningEnvoy;
  let spec: SidecarSpec;
  let base: string;
  const cache = new SnapshotCache();

  const push = (version: string, r: EnvoyResources): void => cache.setSnapshot(NODE, makeSnapshot(r, version));

  /** The LDS version Envoy accepted last, and the ext_authz timeout of the listener it serves with. */
  async function liveListener(): Promise<{ version: string; timeout: unknown; filters: unknown[] }> {
    const dump = await envoy.configDump();
    const [l] = dynamicListeners(dump);
    assert.ok(l, 'a dynamic listener is active');
    const grpcService = httpFilterConfig(l.config, FilterName.extAuthz)?.grpc_service as { timeout?: unknown } | undefined;
    const hcm = ((l.config.filter_chains as Array<{ filters: Array<{ name: string; typed_config: { http_filters: Array<{ name: string }> } }> }>)[0]!.filters.find((f) => f.name === FilterName.httpConnectionManager)!.typed_config);
    return { version: acceptedVersion(dump, 'listeners'), timeout: grpcService?.timeout, filters: hcm.http_filters.map((f) => f.name) };
  }

  const call = () => http(`${base}/mcp`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
  });

  function ldsResponses(): number {
    const t = ads.status().streams[0]?.types.find((x) => x.typeUrl === ResourceTypeUrl.listener);
    return t?.responses ?? 0;
  }

  before(async () => {
    upstream = await startUpstream();
    authz = await startFakeAuthz();
    const listenPort = await freePort();
    spec = {
      nodeId: NODE, server: 'tickets', namespace: 'team-b',
      listen: { host: '127.0.0.1', port: listenPort }, mcpPath: '/mcp',
      upstream: { host: '127.0.0.1', port: upstream.port },
      authz: { host: '127.0.0.1', port: authz.port, timeoutMs: 1000 },
      maxRequestBytes: 1024 * 1024,
      resourceMetadata: { resource: `http://127.0.0.1:${listenPort}/mcp` },
      extProc: false,
    };
    push('v1', sidecarResources(spec));
    ads = await AdsServer.start({ cache });
    const adminPort = await freePort();
    envoy = await startEnvoy({
      config: adsBootstrap({ nodeId: NODE, cluster: 'team-b/tickets', metadata: { server: 'tickets', namespace: 'team-b' }, adminPort, xds: { host: '127.0.0.1', port: ads.port } }),
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

  it('applies a new ext_authz timeout live, without restarting Envoy', async () => {
    assert.deepEqual(await liveListener(), { version: 'v1', timeout: '1s', filters: [FilterName.extAuthz, FilterName.router] });
    const pid = envoy.pid;
    push('v2', sidecarResources({ ...spec, authz: { ...spec.authz, timeoutMs: 1500 } }));
    const live = await eventually('v2 in the config dump', async () => {
      const l = await liveListener();
      return l.version === 'v2' && l;
    });
    assert.equal(live.timeout, '1.500s');
    const lds = ads.status().streams[0]!.types.find((t) => t.typeUrl === ResourceTypeUrl.listener)!;
    assert.equal(lds.ackedVersion, 'v2');
    assert.equal(envoy.pid, pid);
    assert.ok(envoy.running);
    assert.equal((await call()).status, 200);
  });

  it('reports a rejected listener once, does not resend it, and Envoy keeps serving the previous one', async () => {
    const nacks: NackRecord[] = [];
    ads.onNack((n) => nacks.push(n));

    const bad = sidecarResources({ ...spec, authz: { ...spec.authz, timeoutMs: 1500 } });
    const hcm = ((bad.listeners[0]!.filter_chains as JsonObject[])[0]!.filters as JsonObject[]).find((f) => f.name === FilterName.httpConnectionManager)!.typed_config as JsonObject;
    const filters = hcm.http_filters as JsonObject[];
    // A well-formed message that is no HTTP filter: Envoy finds no factory for it and rejects.
    filters.splice(filters.length - 1, 0, { name: 'tollgate.bogus', typed_config: { '@type': 'type.googleapis.com/envoy.config.cluster.v3.Cluster', name: 'not-a-filter' } });
    push('v3', bad);

    const nack = await eventually('a NACK for v3', () => nacks[0]);
    assert.equal(nack.nodeId, NODE);
    assert.equal(nack.typeUrl, ResourceTypeUrl.listener);
    assert.equal(nack.version, 'v3');
    assert.equal(nack.acceptedVersion, 'v2');
    assert.match(nack.message, /envoy\.config\.cluster\.v3\.Cluster/);
    const sentAtNack = ldsResponses();

    // Still the old listener, still serving.
    assert.deepEqual(await liveListener(), { version: 'v2', timeout: '1.500s', filters: [FilterName.extAuthz, FilterName.router] });
    const [l] = dynamicListeners(await envoy.configDump());
    assert.match(JSON.stringify(l!.errorState), /envoy\.config\.cluster\.v3\.Cluster/, 'Envoy shows the rejection too');
    assert.equal((await call()).status, 200);
    const lds = ads.status().streams[0]!.types.find((t) => t.typeUrl === ResourceTypeUrl.listener)!;
    assert.equal(lds.nackedVersion, 'v3');
    assert.equal(lds.ackedVersion, 'v2');

    // The next good version is the very next listener response: v3 was not sent again meanwhile.
    push('v4', sidecarResources({ ...spec, authz: { ...spec.authz, timeoutMs: 1200 } }));
    await eventually('v4 live', async () => (await liveListener()).version === 'v4');
    assert.equal(ldsResponses(), sentAtNack + 1);
    assert.equal(nacks.length, 1);
    assert.equal(ads.nacks.length, 1);
    assert.equal((await liveListener()).timeout, '1.200s');
    assert.equal((await call()).status, 200);
  });

  it('fails closed with 503 (status_on_error) when authz is unreachable', async () => {
    const reqs = upstream.requests.length;
    await authz.stop();
    try {
      const res = await call();
      assert.equal(res.status, 503);
      assert.equal(upstream.requests.length, reqs);
    } finally {
      await authz.restart();
    }
  });

  it('keeps serving while the control plane is away, and resyncs when it is back', async () => {
    const port = ads.port;
    await ads.stop();
    assert.equal((await call()).status, 200, 'config survives the control plane');
    push('v5', sidecarResources({ ...spec, authz: { ...spec.authz, timeoutMs: 900 } }));
    ads = await AdsServer.start({ cache, port });
    const live = await eventually('v5 after reconnect', async () => {
      const l = await liveListener();
      return l.version === 'v5' && l;
    }, 60_000);
    assert.equal(live.timeout, '0.900s');
    assert.equal((await call()).status, 200);
  });
});
