import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { StdioBridge } from '../../../src/bridge/server.js';
import { parseGatewayConfig } from '../../../src/gateway/config.js';
import { GatewayServer } from '../../../src/gateway/server.js';
import { DevIssuer } from '../../../src/identity/issuer.js';
import { LocalMesh } from '../../../src/mesh/local.js';
import { freePort } from '../../../src/util/net.js';
import { fixtureLaunch, runConformance, tokenInjector } from '../servers/support.js';

/**
 * Issue 15: the gateway is transparent to the protocol. The official MCP conformance suite's
 * server scenarios (every active one, DNS-rebinding protection included) run against the gateway,
 * which reaches the conformance server through its sidecar (Envoy + authz) and the stdio bridge,
 * with the caller's delegated token. The one member is unprefixed (`prefix: false`), so the suite
 * sees the server's own tool and prompt names.
 */
describe('gateway: MCP conformance suite through the gateway and the mesh', function () {
  this.timeout(300_000);
  let state: string;
  let issuer: DevIssuer;
  let bridge: StdioBridge;
  let mesh: LocalMesh;
  let gw: GatewayServer;

  before(async () => {
    state = mkdtempSync(join(tmpdir(), 'tollgate-gwconf-'));
    const [meshPort, gwPort] = [await freePort(), await freePort()];
    const serverUrl = `http://127.0.0.1:${meshPort}/mcp`;
    const gwUrl = `http://127.0.0.1:${gwPort}/mcp`;
    issuer = await DevIssuer.start({
      port: 0, stateDir: state,
      exchangeClients: [{ clientId: 'gateway', secret: 'conformance-secret', subjectAudiences: [gwUrl], audiences: [serverUrl] }],
    });
    bridge = await StdioBridge.start({ name: 'conformance', launch: fixtureLaunch, idleTimeoutMs: 5000 });
    mesh = await LocalMesh.start({
      policies: 'test/fixtures/servers-policy', stateDir: join(state, 'mesh'), server: 'conformance', issuer,
      upstream: { host: '127.0.0.1', port: bridge.port },
      ports: { envoy: meshPort, envoyAdmin: 0, authz: 0, issuer: 0 }, echo: process.env.TOLLGATE_TEST_ECHO === '1',
    });
    writeFileSync(join(state, 'gw-secret'), 'conformance-secret\n');
    gw = await GatewayServer.start(parseGatewayConfig({
      listen: `127.0.0.1:${gwPort}`, identity: { issuer: issuer.url },
      delegation: { client_id: 'gateway', client_secret_file: 'gw-secret' },
      servers: [{ name: 'conformance', url: serverUrl, prefix: false }],
    }, state), { logger: pino({ level: process.env.TOLLGATE_TEST_ECHO === '1' ? 'debug' : 'silent' }) });
  });

  after(async () => {
    await gw?.close();
    await mesh?.stop();
    await bridge?.close();
    await issuer?.close();
    if (state) rmSync(state, { recursive: true, force: true });
  });

  it('passes every active server scenario', async () => {
    const token = await issuer.mint({ ttlSec: 600, audience: gw.url, sub: 'conformance-agent', team: 'qa' });
    const proxy = await tokenInjector({ host: '127.0.0.1', port: Number(new URL(gw.url).port) }, () => token);
    try {
      const r = await runConformance(proxy.url('/mcp'));
      assert.equal(r.failed, 0, `failed: ${r.failures.join(', ')}\n${r.output.slice(-4000)}`);
      assert.ok(r.passed >= 35, `expected the full suite, got ${r.passed} passed`);
      assert.equal(r.code, 0);
      assert.match(r.output, /✓ dns-rebinding-protection: 2 passed, 0 failed/, 'Host/Origin checks ran and passed');
    } finally {
      await proxy.close();
    }
  });
});
