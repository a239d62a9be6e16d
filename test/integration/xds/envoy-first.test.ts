import { strict as assert } from 'node:assert';
import { adsBootstrap } from '../../../src/envoy/bootstrap.js';
import { dynamicListeners } from '../../../src/envoy/config-dump.js';
import { sidecarResources } from '../../../src/envoy/resources.js';
import { startEnvoy, type RunningEnvoy } from '../../../src/envoy/run.js';
import { makeSnapshot, SnapshotCache } from '../../../src/xds/cache.js';
import { AdsServer } from '../../../src/xds/server.js';
import { freePort } from '../../../src/util/net.js';
import { eventually, http } from './harness.js';

/** In a pod the sidecar may well start before the control plane is reachable. */
describe('Envoy up before the control plane', function () {
  this.timeout(60_000);
  let envoy: RunningEnvoy | undefined;
  let ads: AdsServer | undefined;

  after(async () => {
    await envoy?.stop();
    await ads?.stop();
  });

  it('waits, not LIVE, then takes its config (from the default snapshot) once the control plane appears', async () => {
    const xdsPort = await freePort();
    const adminPort = await freePort();
    const listen = await freePort();
    envoy = await startEnvoy({
      config: adsBootstrap({ nodeId: 'unregistered-node', cluster: 'c', metadata: { server: 's', namespace: 'ns' }, adminPort, xds: { host: '127.0.0.1', port: xdsPort } }),
      adminPort, concurrency: 1, waitFor: 'admin',
    });
    const ready = await fetch(`${envoy.adminUrl}/ready`);
    assert.equal(ready.status, 503);
    assert.notEqual((await ready.text()).trim(), 'LIVE');

    const cache = new SnapshotCache();
    cache.setDefaultSnapshot(makeSnapshot(sidecarResources({
      nodeId: 'default', server: 's', namespace: 'ns', listen: { host: '127.0.0.1', port: listen }, mcpPath: '/mcp',
      upstream: { host: '127.0.0.1', port: 1 }, authz: { host: '127.0.0.1', port: 1, timeoutMs: 500 },
      maxRequestBytes: 1024, resourceMetadata: { resource: 'urn:test' }, extProc: false,
    }), 'd1'));
    ads = await AdsServer.start({ cache, port: xdsPort });
    await eventually('Envoy LIVE', async () => (await envoy!.admin('/ready')).trim() === 'LIVE', 45_000);
    assert.equal(dynamicListeners(await envoy.configDump()).length, 1);
    const md = await http(`http://127.0.0.1:${listen}/.well-known/oauth-protected-resource/mcp`);
    assert.deepEqual(JSON.parse(md.body), { resource: 'urn:test' });
  });
});
