import { strict as assert } from 'node:assert';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { baseImage } from '../../../src/containers/images.js';
import { imageExists, podman, podmanAvailability, podmanOk } from '../../../src/containers/podman.js';
import { EGRESS_RELAY_SCRIPT, EgressProxy } from '../../../src/servers/egress-proxy.js';
import { podmanRunArgs } from '../../../src/servers/podman-args.js';
import { startGoverned, stopGoverned, type GovernedServer } from '../../../src/servers/governed.js';
import { parseProfile } from '../../../src/servers/profile.js';
import { parseSource } from '../../../src/registry/source.js';
import { connectClient } from '../../support/mcp-client.js';
import { VERSIONS } from './support.js';

const text = (r: unknown): string => ((r as { content: Array<{ text?: string }> }).content ?? []).map((c) => c.text ?? '').join('\n');

async function page(body: string): Promise<{ srv: Server; port: number; hits: string[] }> {
  const hits: string[] = [];
  const srv = createServer((req, res) => {
    hits.push(req.url ?? '');
    if (req.url === '/robots.txt') { res.writeHead(200, { 'content-type': 'text/plain' }); res.end('User-agent: *\nAllow: /\n'); return; }
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<html><body><h1>${body}</h1><p>${body} paragraph.</p></body></html>`);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { srv, port: (srv.address() as AddressInfo).port, hits };
}

/**
 * Issue 14 isolation: servers in rootful podman containers from the base image, locked down by
 * default; a ToolHive-format profile opens exactly its mounts and outbound hosts/ports.
 */
describe('servers Tollgate runs: podman isolation and permission profiles', function () {
  this.timeout(900_000);
  let state: string;
  let mount: string;
  let governed: GovernedServer[] = [];
  let allowed: Awaited<ReturnType<typeof page>>;
  let other: Awaited<ReturnType<typeof page>>;
  const clients: Client[] = [];

  before(async function () {
    const a = await podmanAvailability();
    if (!a.ok) { console.log(`      skipped: ${a.reason}`); this.skip(); }
    if (!(await imageExists(baseImage()))) { console.log(`      skipped: base image ${baseImage()} not built (make base-image)`); this.skip(); }
    state = mkdtempSync(join(tmpdir(), 'tollgate-podman-'));
    mount = mkdtempSync(join(tmpdir(), 'tollgate-mount-'));
    chmodSync(mount, 0o755); // the container's user (65532) reads it
    writeFileSync(join(mount, 'inside.txt'), 'hello from the mount\n');
    mkdirSync(join(state, 'outside'));
    writeFileSync(join(state, 'outside', 'secret.txt'), 'host secret\n');
    allowed = await page('Allowed page');
    other = await page('Forbidden page');
    const spec = (name: string, source: string, args: string[], profile: unknown) => ({
      name, source: parseSource(source), args, env: {}, isolation: 'podman' as const, stateDir: state, profile: parseProfile(profile),
    });
    governed = await startGoverned([
      // The server may read anywhere ("/"): only the container decides what exists.
      spec('fs', VERSIONS.filesystem, ['/'], { read: [`${mount}:/data`] }),
      // mcp-server-fetch refuses loopback and private addresses unless told otherwise; the egress
      // proxy, not the server, is what limits it here.
      spec('fetch', VERSIONS.fetch, ['--allow-private-ips'], { network: { outbound: { allow_host: ['127.0.0.1'], allow_port: [allowed.port] } } }),
    ], { policies: 'test/fixtures/servers-policy', stateDir: state, ports: { envoy: 0, envoyAdmin: 0, authz: 0, issuer: 0 }, echo: process.env.TOLLGATE_TEST_ECHO === '1' });
  });

  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await stopGoverned(governed);
    allowed?.srv.close(); other?.srv.close();
    if (state) rmSync(state, { recursive: true, force: true });
    if (mount) rmSync(mount, { recursive: true, force: true });
  });

  async function client(name: string): Promise<Client> {
    const g = governed.find((x) => x.server.name === name)!;
    const c = await connectClient(g.mesh.endpoints.mcp, await g.mesh.token({ sub: 'alice' }));
    clients.push(c);
    return c;
  }

  it('filesystem: reads its mount, cannot see the host outside it, cannot write a read mount', async () => {
    const c = await client('fs');
    assert.match(text(await c.callTool({ name: 'read_text_file', arguments: { path: '/data/inside.txt' } })), /hello from the mount/);
    const outside = await c.callTool({ name: 'read_text_file', arguments: { path: join(state, 'outside', 'secret.txt') } });
    assert.equal(outside.isError, true);
    assert.match(text(outside), /ENOENT/);
    await assert.rejects(c.callTool({ name: 'write_file', arguments: { path: '/data/x.txt', content: 'x' } }), (e: unknown) => e instanceof McpError && e.code === -32003, 'denied by policy first');
  });

  it('the container runs locked down: no network, read-only root, no capabilities, no new privileges, non-root, limits', async () => {
    const ids = (await podmanOk(['ps', '-q', '--filter', 'label=tollgate.server=fs'])).trim().split('\n').filter(Boolean);
    assert.ok(ids.length >= 1, 'a container for the fs session is running');
    const [info] = JSON.parse(await podmanOk(['inspect', ids[0]!])) as Array<{ Config: { User: string }; HostConfig: { NetworkMode: string; ReadonlyRootfs: boolean; CapDrop: string[]; CapAdd: string[] | null; SecurityOpt: string[]; Memory: number; NanoCpus: number; PidsLimit: number }; EffectiveCaps: string[] | null }>;
    assert.equal(info!.Config.User, '65532:65532');
    assert.equal(info!.HostConfig.NetworkMode, 'none');
    assert.equal(info!.HostConfig.ReadonlyRootfs, true);
    assert.deepEqual(info!.EffectiveCaps ?? [], []);
    assert.ok(info!.HostConfig.SecurityOpt.some((o) => o.startsWith('no-new-privileges')), JSON.stringify(info!.HostConfig.SecurityOpt));
    assert.equal(info!.HostConfig.Memory, 512 * 1024 * 1024);
    assert.equal(info!.HostConfig.NanoCpus, 1e9);
    assert.equal(info!.HostConfig.PidsLimit, 256);
  });

  it('fetch: reaches the allowed loopback host:port through the egress proxy and is refused another port', async () => {
    const c = await client('fetch');
    const ok = await c.callTool({ name: 'fetch', arguments: { url: `http://127.0.0.1:${allowed.port}/page` } });
    assert.match(text(ok), /Allowed page/);
    assert.ok(allowed.hits.includes('/page'));
    const refused = await c.callTool({ name: 'fetch', arguments: { url: `http://127.0.0.1:${other.port}/page` } }).catch((e: Error) => ({ isError: true, content: [{ text: e.message }] }));
    assert.equal((refused as { isError?: boolean }).isError, true, text(refused));
    assert.doesNotMatch(text(refused), /Forbidden page/);
    assert.deepEqual(other.hits, [], 'nothing reached the disallowed server');
    const egress = governed.find((g) => g.server.name === 'fetch')!.server.egress!;
    assert.ok(egress.decisions.some((d) => d.port === other.port && !d.allowed));
  });

  it('egress: a container reaches exactly the allowed host:port through the proxy; direct connections and other ports fail', async () => {
    const profile = parseProfile({ network: { outbound: { allow_host: ['127.0.0.1'], allow_port: [allowed.port] } } });
    const proxy = await EgressProxy.start(join(state, 'egress-probe'), profile);
    const relay = join(state, 'egress-relay.mjs');
    writeFileSync(relay, EGRESS_RELAY_SCRIPT);
    // A client inside the container: one request through the proxy per port, then a direct connection.
    const probe = `const http = require('node:http'); const net = require('node:net');
      const get = (port) => new Promise((r) => http.get({ host: '127.0.0.1', port: 3128, path: 'http://127.0.0.1:' + port + '/page' }, (res) => { let b = ''; res.on('data', (d) => b += d); res.on('end', () => r(res.statusCode + ' ' + b)); }).on('error', (e) => r('error ' + e.code)));
      const direct = (port) => new Promise((r) => net.connect(port, '127.0.0.1').on('connect', () => r('connected')).on('error', (e) => r('error ' + e.code)));
      (async () => { console.log(JSON.stringify({ allowed: await get(${allowed.port}), other: await get(${other.port}), direct: await direct(${allowed.port}) })); })();`;
    try {
      const args = podmanRunArgs({ image: baseImage(), command: ['node', '-e', probe], envFile: null, profile, name: 'egress-probe', egressSocketDir: proxy.dir, relayScript: relay });
      const r = await podman(args, { timeoutMs: 120_000 });
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { allowed: string; other: string; direct: string };
      assert.match(out.allowed, /^200 .*Allowed page/);
      assert.match(out.other, /^403 .*does not allow 127\.0\.0\.1:/);
      assert.match(out.direct, /^error E(CONNREFUSED|NETUNREACH)/, 'no network path but the proxy');
      assert.deepEqual(other.hits, []);
      assert.deepEqual(proxy.decisions.map((d) => [d.port, d.allowed]), [[allowed.port, true], [other.port, false]]);
    } finally { await proxy.close(); }
  });
});
