import { strict as assert } from 'node:assert';
import { request } from 'node:http';
import { injectSidecars } from '../../../src/k8s/mutate.js';
import { freePort, waitForPort } from '../../../src/util/net.js';
import { ManagedProcess } from '../../../src/util/process.js';
import { toolPath } from '../../../src/util/tools.js';
import { initContainer, kubeletExpand, mcpPod } from '../../unit/k8s/fixtures.js';

function get(port: number, path: string, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * Runs the injected Envoy container's command line as the kubelet would (downward-API env, `$(VAR)`
 * expansion) against a real Envoy, to prove the bootstrap loads and the readiness probe works.
 */
describe('injected Envoy sidecar under a real Envoy (integration)', function () {
  // Without a control plane Envoy opens its listeners only once the initial CDS and LDS fetches
  // time out (15 s each); until then the kubelet's probe is refused, which is the wanted answer.
  this.timeout(90000);
  let envoyBin: string;
  let envoy: ManagedProcess | undefined;
  let health: number;
  let admin: number;

  before(async function () {
    try {
      envoyBin = toolPath('envoy');
    } catch {
      // `make test` installs Envoy first (make deps); a bare mocha run without it has nothing to run.
      this.skip();
    }
    [health, admin] = [await freePort(), await freePort()];
    const mcp = await freePort();
    const nobody = await freePort(); // no control plane: the sidecar must still start and answer probes
    const r = injectSidecars(mcpPod({ annotations: { 'tollgate.dev/mcp-port': String(mcp) } }), {
      adminPort: admin, healthPort: health, controlPlane: { host: '127.0.0.1', port: nobody },
    });
    assert.ok(r.injected);
    const c = initContainer(r.pod, 'tollgate-envoy');
    const env: Record<string, string> = { POD_NAME: 'weather-7d9f8c6b5-x2k4q', POD_NAMESPACE: 'mcp-demo' };
    for (const e of c.env as { name: string; value?: string }[]) if (e.value !== undefined) env[e.name] = kubeletExpand(e.value, env);
    const args = (c.args as string[]).map((a) => kubeletExpand(a, env));
    assert.deepEqual(c.command, ['envoy']);
    envoy = await ManagedProcess.start('envoy', envoyBin, args, { ready: () => waitForPort(health, '127.0.0.1', 60000), timeoutMs: 65000 });
  });

  after(async () => { await envoy?.stop(); });

  it('answers the readiness probe from the admin /ready endpoint', async () => {
    const r = await get(health, '/ready');
    assert.ok(r.status === 200 || r.status === 503, `status ${r.status}`);
    assert.match(r.body, /^(LIVE|INITIALIZING|PRE_INITIALIZING)\s*$/);
  });

  it('exposes nothing else of the admin interface on the health port', async () => {
    for (const [path, method] of [['/stats', 'GET'], ['/config_dump', 'GET'], ['/quitquitquit', 'POST'], ['/ready', 'POST']] as const) {
      const r = await get(health, path, method);
      assert.equal(r.status, 404, `${method} ${path}`);
    }
    assert.ok(envoy?.running, 'Envoy still running');
  });

  it('identifies itself with the real pod name and the metadata the control plane needs', async () => {
    const info = JSON.parse((await get(admin, '/server_info')).body) as { command_line_options: { service_node: string }; node: { id: string; cluster: string; metadata: Record<string, string> } };
    assert.equal(info.command_line_options.service_node, 'mcp-demo/weather-7d9f8c6b5-x2k4q');
    assert.equal(info.node.id, 'mcp-demo/weather-7d9f8c6b5-x2k4q');
    assert.equal(info.node.cluster, 'mcp-demo/weather');
    assert.equal(info.node.metadata.server, 'weather');
    assert.equal(info.node.metadata.upstream_port, '8080');
  });
});
