import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { adsBootstrap, staticBootstrap, writeBootstrap } from '../../../src/envoy/bootstrap.js';
import type { JsonObject } from '../../../src/envoy/protojson.js';
import type { SidecarSpec } from '../../../src/envoy/resources.js';
import { startEnvoy, type RunningEnvoy } from '../../../src/envoy/run.js';
import { planInjection } from '../../../src/k8s/mutate.js';
import { sidecarBootstrap } from '../../../src/k8s/sidecars.js';
import { freePort } from '../../../src/util/net.js';
import { toolPath } from '../../../src/util/tools.js';
import { DENY_HEADER, http, startFakeAuthz, startUpstream, type FakeAuthz, type Upstream } from './harness.js';

const run = promisify(execFile);

async function envoyValidates(config: JsonObject): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-validate-'));
  try {
    const path = join(dir, 'envoy.json');
    await writeBootstrap(path, config);
    const { stdout, stderr } = await run(toolPath('envoy'), ['--mode', 'validate', '-c', path, '--disable-hot-restart', '--log-level', 'warning']);
    return stdout + stderr;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('Envoy bootstraps, checked by Envoy itself', function () {
  this.timeout(60_000);

  const spec = (listen: number, upstream: number, authz: number): SidecarSpec => ({
    nodeId: 'team-c/files', server: 'files', namespace: 'team-c',
    listen: { host: '127.0.0.1', port: listen }, mcpPath: '/mcp',
    upstream: { host: '127.0.0.1', port: upstream },
    authz: { host: '127.0.0.1', port: authz, timeoutMs: 2000 },
    maxRequestBytes: 1024 * 1024, resourceMetadata: { resource: `http://127.0.0.1:${listen}/mcp` }, extProc: true,
  });

  it('envoy --mode validate accepts the ADS and the static bootstrap', async () => {
    assert.match(await envoyValidates(adsBootstrap({ nodeId: 'n', cluster: 'c', metadata: { server: 's', namespace: 'ns', pod: 'p' }, adminPort: 9901, xds: { host: '127.0.0.1', port: 18000 } })), /OK/);
    assert.match(await envoyValidates(staticBootstrap(spec(10000, 3000, 9191), 9901)), /OK/);
    const dns = spec(10000, 3000, 9191);
    dns.authz.host = 'localhost';
    assert.match(await envoyValidates(staticBootstrap(dns, 9901)), /OK/);
    // The slowloris limits (overload manager, connection_limit, HCM timeouts), tuned.
    const tuned = { ...spec(10000, 3000, 9191), downstream: { requestHeadersTimeoutMs: 500, requestTimeoutMs: 1500, connectionIdleTimeoutMs: 2000, maxConnections: 7 } };
    assert.match(await envoyValidates(staticBootstrap(tuned, 9901, undefined, undefined, 9)), /OK/);
    assert.match(await envoyValidates(adsBootstrap({ nodeId: 'n', cluster: 'c', metadata: { server: 's', namespace: 'ns' }, adminPort: 9901, xds: { host: '127.0.0.1', port: 18000 }, maxDownstreamConnections: 9 })), /OK/);
    // The bootstrap the Kubernetes injector writes: ADS plus a health listener exempt from the cap.
    const plan = planInjection({
      apiVersion: 'v1', kind: 'Pod',
      metadata: { generateName: 'weather-7d9f8c6b5-', namespace: 'mcp-demo', labels: { 'app.kubernetes.io/name': 'weather' } },
      spec: { containers: [{ name: 'server', image: 'example/weather-mcp:1', ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }] }] },
    });
    assert.ok(typeof plan !== 'string', String(plan));
    const k8s = sidecarBootstrap(plan);
    assert.ok(k8s.overload_manager, 'the injected bootstrap has the process-wide connection cap');
    const health = ((k8s.static_resources as JsonObject).listeners as JsonObject[])[0]!;
    assert.equal(health.ignore_global_conn_limit, true);
    assert.match(await envoyValidates(k8s), /OK/);
  });

  describe('a static sidecar (no control plane)', () => {
    let upstream: Upstream;
    let authz: FakeAuthz;
    let envoy: RunningEnvoy;
    let base: string;

    before(async () => {
      upstream = await startUpstream();
      authz = await startFakeAuthz();
      const listen = await freePort();
      const adminPort = await freePort();
      envoy = await startEnvoy({ config: staticBootstrap(spec(listen, upstream.port, authz.port), adminPort), adminPort, concurrency: 1 });
      base = `http://127.0.0.1:${listen}`;
    });

    after(async () => {
      await envoy?.stop();
      await authz?.stop();
      await upstream?.close();
    });

    it('governs calls exactly like the ADS-fed one', async () => {
      const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
      const ok = await http(`${base}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      assert.equal(ok.status, 200);
      assert.equal(upstream.requests.at(-1)!.body, body);
      assert.deepEqual(authz.checks.at(-1)!.contextExtensions, { server: 'files', namespace: 'team-c' });
      const reqs = upstream.requests.length;
      const denied = await http(`${base}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json', [DENY_HEADER]: '1' }, body });
      assert.equal(denied.status, 429);
      assert.equal(upstream.requests.length, reqs);
      const md = await http(`${base}/.well-known/oauth-protected-resource/mcp`);
      assert.equal(md.status, 200);
      assert.equal(JSON.parse(md.body).resource, `${base}/mcp`);
    });

    it('stops and reports it', async () => {
      assert.ok(envoy.running);
      await envoy.stop();
      assert.equal(envoy.running, false);
      await assert.rejects(envoy.admin('/ready'));
    });
  });
});
