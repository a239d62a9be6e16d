import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { formatRegistrations } from '../../../src/controlplane/registrations.js';
import { SidecarXds } from '../../../src/controlplane/xds.js';
import { LocalPki, type CertFiles } from '../../../src/pki/index.js';
import { tryAds } from './ads-client.js';

const DEMO = 'spiffe://tollgate.local/ns/default/sa/demo';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Issue 13: the control plane forgets a sidecar some time after its last ADS stream ended. */
describe('trust: the xDS registry forgets disconnected sidecars after a grace period', function () {
  this.timeout(30_000);
  let dir: string;
  let xds: SidecarXds;
  let sidecar: CertFiles;
  const logs: string[] = [];
  const creds = (f: CertFiles): grpc.ChannelCredentials => grpc.credentials.createSsl(readFileSync(f.ca), readFileSync(f.key), readFileSync(f.cert));

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-forget-'));
    const pki = await LocalPki.open(join(dir, 'pki'));
    const server = await pki.issue('xds-server', { commonName: 'cp', uris: ['spiffe://tollgate.local/ns/tollgate-system/sa/tollgate-controlplane'], ips: ['127.0.0.1'], usage: 'server' });
    sidecar = await pki.issue('demo', { commonName: 'demo', uris: [DEMO], usage: 'client' });
    const registrations = join(dir, 'registrations.yaml');
    writeFileSync(registrations, formatRegistrations([{
      identity: DEMO, nodeId: 'default/demo', server: 'demo', namespace: 'default', listen: { host: '127.0.0.1', port: 10000 },
      mcpPath: '/mcp', upstream: { host: '127.0.0.1', port: 3001 },
    }]));
    xds = await SidecarXds.start({
      host: '127.0.0.1', port: 0, tls: server, trustDomain: 'tollgate.local', registrationsFile: registrations, forgetAfterMs: 600,
      defaults: { authz: { host: '127.0.0.1', port: 9191 }, authzTimeoutMs: 1000, maxRequestBytes: 1024, issuer: 'http://i', extProc: true, listenHost: '127.0.0.1' },
      log: (m) => logs.push(m),
    });
  });

  after(async () => {
    await xds?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the snapshot across a quick reconnect, drops it once the sidecar stays away', async () => {
    const address = xds.ads.address;
    assert.deepEqual(xds.registry.known, []);
    const a = await tryAds(address, creds(sidecar), 'default/demo', {});
    assert.equal(a.code, null, a.details);
    assert.ok(a.responses.length > 0);
    assert.deepEqual(xds.registry.known, ['default/demo']);
    a.close();
    await sleep(300);
    assert.deepEqual(xds.registry.known, ['default/demo'], 'still known within the grace period');
    const b = await tryAds(address, creds(sidecar), 'default/demo', {});
    assert.equal(b.code, null);
    await sleep(600);
    assert.deepEqual(xds.registry.known, ['default/demo'], 'a reconnect cancels the pending forget');
    b.close();
    await sleep(1000);
    assert.deepEqual(xds.registry.known, [], 'forgotten after the grace period');
    assert.ok(logs.some((l) => l.includes('forgot default/demo')), logs.join('\n'));
    assert.equal(xds.status().streams.length, 0);
  });

  it('a refused stream leaves nothing behind', async () => {
    const r = await tryAds(xds.ads.address, creds(sidecar), 'default/not-me', {});
    r.close();
    assert.equal(r.code, grpc.status.PERMISSION_DENIED);
    assert.deepEqual(xds.registry.known, []);
    assert.equal(xds.status().refusals.node_id_mismatch, 1);
  });
});
