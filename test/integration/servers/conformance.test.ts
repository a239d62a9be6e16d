import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StdioBridge } from '../../../src/bridge/server.js';
import { LocalMesh } from '../../../src/mesh/local.js';
import { fixtureLaunch, runConformance, tokenInjector } from './support.js';

/**
 * Issue 14: the bridge is transparent to the protocol. The official MCP conformance suite's server
 * scenarios (every active one) run against a stdio server through the bridge, then through the
 * whole mesh (Envoy, ext_authz, ext_proc, authz) in front of it.
 */
describe('stdio bridge: MCP conformance suite', function () {
  this.timeout(300_000);
  let bridge: StdioBridge;
  const logs: string[] = [];

  // A bridge per test: the suite's client never ends its sessions, so each run leaves ~30 behind.
  beforeEach(async () => {
    bridge = await StdioBridge.start({ name: 'conformance', launch: fixtureLaunch, idleTimeoutMs: 2000, log: (l, m, f) => logs.push(`${l} ${m} ${JSON.stringify(f ?? {})}`) });
  });
  afterEach(async () => { await bridge?.close(); });

  it('passes every active server scenario through the bridge alone', async () => {
    const r = await runConformance(bridge.url);
    assert.equal(r.failed, 0, `failed: ${r.failures.join(', ')}\n${r.output.slice(-3000)}`);
    assert.ok(r.passed >= 35, `expected the full suite, got ${r.passed} passed`);
    assert.equal(r.code, 0);
    // Idle sessions (the suite never sends DELETE) are reaped with their processes.
    const deadline = Date.now() + 10_000;
    while (bridge.list().length > 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 200));
    assert.equal(bridge.list().length, 0, 'idle sessions were closed');
  });

  it('passes every active server scenario through the mesh in front of the bridge', async () => {
    const state = mkdtempSync(join(tmpdir(), 'tollgate-conf-'));
    const mesh = await LocalMesh.start({
      policies: 'test/fixtures/servers-policy', stateDir: state, server: 'conformance',
      upstream: { host: '127.0.0.1', port: bridge.port },
      ports: { envoy: 0, envoyAdmin: 0, authz: 0, issuer: 0 }, echo: process.env.TOLLGATE_TEST_ECHO === '1',
    });
    const token = await mesh.token({ sub: 'conformance-agent', team: 'qa' });
    const envoyPort = Number(new URL(mesh.endpoints.mcp).port);
    const proxy = await tokenInjector({ host: '127.0.0.1', port: envoyPort }, () => token);
    try {
      const r = await runConformance(proxy.url('/mcp'));
      assert.equal(r.failed, 0, `failed: ${r.failures.join(', ')}\n${r.output.slice(-3000)}`);
      assert.ok(r.passed >= 35, `expected the full suite, got ${r.passed} passed`);
    } finally {
      await proxy.close();
      await mesh.stop();
      rmSync(state, { recursive: true, force: true });
    }
  });
});
