import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  adsBootstrap, DEFAULT_MAX_DOWNSTREAM_CONNECTIONS, GLOBAL_CONNECTIONS_MONITOR, staticBootstrap, writeBootstrap, XDS_CLUSTER,
} from '../../../src/envoy/bootstrap.js';
import type { JsonObject } from '../../../src/envoy/protojson.js';
import { AUTHZ_CLUSTER, LISTENER_NAME, UPSTREAM_CLUSTER, type SidecarSpec } from '../../../src/envoy/resources.js';
import { EnvoyType } from '../../../src/envoy/types.js';

const spec: SidecarSpec = {
  nodeId: 'team-a/weather', server: 'weather', namespace: 'team-a',
  listen: { host: '127.0.0.1', port: 10000 }, mcpPath: '/mcp',
  upstream: { host: '127.0.0.1', port: 3000 },
  authz: { host: '127.0.0.1', port: 9191, timeoutMs: 250 },
  maxRequestBytes: 1024 * 1024, resourceMetadata: { resource: 'http://127.0.0.1:10000/mcp' }, extProc: false,
};

const o = (v: unknown): JsonObject => v as JsonObject;

describe('Envoy bootstrap', () => {
  it('ADS: only the control-plane cluster is static; LDS and CDS come over ADS v3', () => {
    const b = adsBootstrap({
      nodeId: 'n1', cluster: 'team-a/weather', metadata: { server: 'weather', namespace: 'team-a', pod: 'weather-7f' },
      adminPort: 9901, xds: { host: '127.0.0.1', port: 18000 },
    });
    assert.deepEqual(b.node, { id: 'n1', cluster: 'team-a/weather', metadata: { server: 'weather', namespace: 'team-a', pod: 'weather-7f' } });
    assert.deepEqual(o(b.admin).address, { socket_address: { address: '127.0.0.1', port_value: 9901 } });
    const clusters = o(b.static_resources).clusters as JsonObject[];
    assert.deepEqual(clusters.map((c) => c.name), [XDS_CLUSTER]);
    assert.equal(clusters[0]!.type, 'STATIC');
    assert.deepEqual(o(o(clusters[0]!.typed_extension_protocol_options)[EnvoyType.httpProtocolOptions]).explicit_http_config, { http2_protocol_options: {} });
    assert.equal(o(b.static_resources).listeners, undefined);
    const dyn = o(b.dynamic_resources);
    assert.deepEqual(dyn.ads_config, {
      api_type: 'GRPC', transport_api_version: 'V3',
      grpc_services: [{ envoy_grpc: { cluster_name: XDS_CLUSTER } }], set_node_on_first_message_only: true,
    });
    assert.deepEqual(dyn.lds_config, { ads: {}, resource_api_version: 'V3' });
    assert.deepEqual(dyn.cds_config, { ads: {}, resource_api_version: 'V3' });
  });

  it('ADS: a control plane named by DNS is resolved by Envoy', () => {
    const b = adsBootstrap({ nodeId: 'n', cluster: 'c', metadata: { server: 's', namespace: 'ns' }, adminPort: 9901, xds: { host: 'tollgate-cp.tollgate-system.svc', port: 18000 } });
    assert.equal((o(b.static_resources).clusters as JsonObject[])[0]!.type, 'STRICT_DNS');
  });

  it('static: the whole sidecar inline, no dynamic resources', () => {
    const b = staticBootstrap(spec, 9901);
    assert.equal(b.dynamic_resources, undefined);
    const s = o(b.static_resources);
    assert.deepEqual((s.listeners as JsonObject[]).map((l) => l.name), [LISTENER_NAME]);
    assert.deepEqual((s.clusters as JsonObject[]).map((c) => c.name), [UPSTREAM_CLUSTER, AUTHZ_CLUSTER]);
    assert.deepEqual(o(b.node).metadata, { server: 'weather', namespace: 'team-a' });
  });

  it('both cap client connections process-wide with the overload manager; admin is exempt', () => {
    const ads = adsBootstrap({ nodeId: 'n', cluster: 'c', metadata: { server: 's', namespace: 'ns' }, adminPort: 9901, xds: { host: '127.0.0.1', port: 18000 } });
    const st = staticBootstrap(spec, 9901);
    const monitor = (max: number): JsonObject => ({
      resource_monitors: [{
        name: GLOBAL_CONNECTIONS_MONITOR,
        typed_config: { '@type': `type.googleapis.com/${EnvoyType.downstreamConnections}`, max_active_downstream_connections: max },
      }],
    });
    assert.equal(DEFAULT_MAX_DOWNSTREAM_CONNECTIONS, 5000);
    for (const b of [ads, st]) {
      assert.deepEqual(b.overload_manager, monitor(5000));
      assert.equal(o(b.admin).ignore_global_conn_limit, true);
    }
    const tuned = adsBootstrap({ nodeId: 'n', cluster: 'c', metadata: { server: 's', namespace: 'ns' }, adminPort: 9901, xds: { host: '127.0.0.1', port: 18000 }, maxDownstreamConnections: 200 });
    assert.deepEqual(tuned.overload_manager, monitor(200));
    assert.deepEqual(staticBootstrap(spec, 9901, undefined, undefined, 300).overload_manager, monitor(300));
    assert.throws(() => staticBootstrap(spec, 9901, undefined, undefined, 0), /maxDownstreamConnections/);
  });

  it('writes JSON Envoy can read, private to its owner', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-bootstrap-'));
    try {
      const path = join(dir, 'envoy.json');
      const b = staticBootstrap(spec, 9901);
      await writeBootstrap(path, b);
      assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), b);
      assert.equal(statSync(path).mode & 0o777, 0o600);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
