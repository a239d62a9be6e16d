import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adsBootstrap } from '../../../src/envoy/bootstrap.js';
import { ListenerNotBoundError, waitForListener } from '../../../src/envoy/listeners.js';
import { LISTENER_NAME, sidecarResources } from '../../../src/envoy/resources.js';
import { startEnvoy } from '../../../src/envoy/run.js';
import { makeSnapshot, SnapshotCache } from '../../../src/xds/cache.js';
import { AdsServer } from '../../../src/xds/server.js';
import { freePort } from '../../../src/util/net.js';
import { selfCommand } from '../../../src/util/self.js';
import { eventually } from '../xds/harness.js';

/** Issue 10 item 8: a taken port never ends in "mesh is up" with strangers answering on it. */

async function holdPort(): Promise<{ port: number; server: Server }> {
  const port = await freePort();
  const server = createServer((s) => s.end('not envoy\n'));
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return { port, server };
}

interface Run { code: number | null; stdout: string; stderr: string; ms: number }

function runCli(args: string[], timeoutMs: number): Promise<Run> {
  const self = selfCommand();
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(self.cmd, [...self.args, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => { stdout += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
    const timer = setTimeout(() => child.kill('SIGINT'), timeoutMs);
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr, ms: Date.now() - t0 }); });
  });
}

describe('trust: port collisions (issue 10 item 8)', function () {
  this.timeout(90_000);

  it('`tollgate up` with the MCP port taken exits 1 within seconds, naming the port and the fix', async () => {
    const held = await holdPort();
    const state = mkdtempSync(join(tmpdir(), 'tollgate-ports-'));
    try {
      const ports = await Promise.all(Array.from({ length: 6 }, () => freePort()));
      const r = await runCli(['up', '--state', state, '--envoy-port', String(held.port), '--admin-port', String(ports[0]),
        '--authz-port', String(ports[1]), '--issuer-port', String(ports[2]), '--xds-port', String(ports[3]),
        '--nats-port', String(ports[4]), '--metrics-port', String(ports[5])], 30_000);
      assert.equal(r.code, 1, `exit code; stderr: ${r.stderr}`);
      assert.ok(r.ms < 10_000, `took ${r.ms} ms`);
      assert.match(r.stderr, new RegExp(`port ${held.port} \\(Envoy MCP listener\\) on 127\\.0\\.0\\.1 is already in use`));
      assert.match(r.stderr, /--envoy-port N/);
      assert.doesNotMatch(r.stdout, /mesh is up/);
    } finally {
      held.server.close();
      rmSync(state, { recursive: true, force: true });
    }
  });

  it('`tollgate up` with the authz port taken fails as fast and as clearly (issue 18)', async () => {
    const held = await holdPort();
    const state = mkdtempSync(join(tmpdir(), 'tollgate-ports-'));
    try {
      const ports = await Promise.all(Array.from({ length: 6 }, () => freePort()));
      const r = await runCli(['up', '--state', state, '--envoy-port', String(ports[0]), '--admin-port', String(ports[1]),
        '--authz-port', String(held.port), '--issuer-port', String(ports[2]), '--xds-port', String(ports[3]),
        '--nats-port', String(ports[4]), '--metrics-port', String(ports[5])], 30_000);
      assert.equal(r.code, 1, r.stderr);
      assert.ok(r.ms < 10_000, `took ${r.ms} ms`);
      assert.match(r.stderr, new RegExp(`port ${held.port} \\(authz gRPC\\)[^\\n]*--authz-port N`));
      assert.doesNotMatch(r.stdout, /mesh is up/);
    } finally {
      held.server.close();
      rmSync(state, { recursive: true, force: true });
    }
  });

  it('Envoy rejecting the MCP listener over LDS (port taken after the check) is detected, not taken for success', async () => {
    const held = await holdPort();
    const cache = new SnapshotCache();
    const ads = await AdsServer.start({ cache });
    const adminPort = await freePort();
    const upstreamPort = await freePort();
    cache.setSnapshot('default/demo', makeSnapshot(sidecarResources({
      nodeId: 'default/demo', server: 'demo', namespace: 'default', listen: { host: '127.0.0.1', port: held.port }, mcpPath: '/mcp',
      upstream: { host: '127.0.0.1', port: upstreamPort }, authz: { host: '127.0.0.1', port: upstreamPort, timeoutMs: 1000 },
      maxRequestBytes: 1024, resourceMetadata: {}, extProc: false,
    })));
    const envoy = await startEnvoy({
      config: adsBootstrap({ nodeId: 'default/demo', cluster: 'default/demo', metadata: { server: 'demo', namespace: 'default' }, adminPort, xds: { host: '127.0.0.1', port: ads.port } }),
      adminPort, concurrency: 1,
    });
    try {
      const t0 = Date.now();
      const err = await waitForListener(envoy, LISTENER_NAME, held.port).then(() => null, (e: Error) => e);
      assert.ok(err instanceof ListenerNotBoundError, `expected a ListenerNotBoundError, got ${String(err)}`);
      assert.match(err.message, new RegExp(`did not open its ${LISTENER_NAME} listener on port ${held.port}`));
      assert.match(err.message, /cannot bind|already in use|update_rejected/i);
      assert.ok(Date.now() - t0 < 5000, 'detected within seconds');
      // A later snapshot with a free port is bound (the rejection left Envoy running and listening to xDS).
      const free = await freePort();
      held.server.close();
      cache.setSnapshot('default/demo', makeSnapshot(sidecarResources({
        nodeId: 'default/demo', server: 'demo', namespace: 'default', listen: { host: '127.0.0.1', port: free }, mcpPath: '/mcp',
        upstream: { host: '127.0.0.1', port: upstreamPort }, authz: { host: '127.0.0.1', port: upstreamPort, timeoutMs: 1000 },
        maxRequestBytes: 1024, resourceMetadata: {}, extProc: false,
      })));
      await eventually('Envoy to bind the free port', async () => {
        const doc = JSON.parse(await envoy.admin('/listeners?format=json')) as { listener_statuses: { local_address: { socket_address: { port_value: number } } }[] };
        return doc.listener_statuses.some((l) => l.local_address.socket_address.port_value === free);
      }, 10_000);
    } finally {
      await envoy.stop();
      await ads.stop();
      held.server.close();
    }
  });
});
