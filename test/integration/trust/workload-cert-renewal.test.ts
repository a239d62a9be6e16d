import { strict as assert } from 'node:assert';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { apiServerReviewer, WorkloadCertServer } from '../../../src/controlplane/workload-certs.js';
import { SidecarXds } from '../../../src/controlplane/xds.js';
import type { SidecarRegistration } from '../../../src/controlplane/registrations.js';
import { LocalPki, type CertFiles } from '../../../src/pki/index.js';
import { injectSidecars } from '../../../src/k8s/mutate.js';
import { registrationFromPod } from '../../../src/k8s/registrations.js';
import { sidecarBootstrap } from '../../../src/k8s/sidecars.js';
import type { PodLike } from '../../../src/k8s/types.js';
import { startEnvoy, type RunningEnvoy } from '../../../src/envoy/run.js';
import { waitForListener } from '../../../src/envoy/listeners.js';
import { LISTENER_NAME } from '../../../src/envoy/resources.js';
import type { JsonObject } from '../../../src/envoy/protojson.js';
import { selfCommand } from '../../../src/util/self.js';
import { freePort } from '../../../src/util/net.js';
import { haveKubeTools, startApiServer, type ApiServer } from './kube-apiserver.js';
import { tryAds } from './ads-client.js';

const run = promisify(execFile);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Short enough to watch a certificate expire in a test, long enough for a loaded machine. */
const LIFETIME_MS = 12_000;

async function until<T>(what: string, f: () => T | undefined | Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

const serialOf = (pem: string | Buffer): string => new X509Certificate(pem).serialNumber.toLowerCase().replace(/^0+/, '');

/**
 * Sidecar certificates are renewed before they expire: the pod's renewer (`tollgate cert request
 * --renew`, the tollgate-identity-renew container) gets a new certificate at half its lifetime
 * from the real certificate endpoint (TokenReview by a real kube-apiserver), and the injected
 * Envoy follows the renamed files through its file-based SDS source, so a new mTLS xDS connection
 * made after the first certificate expired is admitted.
 */
describe('trust: workload certificates are renewed, and Envoy uses the renewed one', function () {
  this.timeout(180_000);
  let api: ApiServer;
  let dir: string;
  let pki: LocalPki;
  let server: CertFiles;
  let certs: WorkloadCertServer;
  let xds: SidecarXds | null = null;
  let envoy: RunningEnvoy | null = null;
  let renewer: ChildProcess | null = null;
  let renewerLog = '';

  after(async () => {
    renewer?.kill('SIGKILL');
    await envoy?.stop();
    await xds?.stop();
    await certs?.close();
    await api?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  before(async function () {
    if (!haveKubeTools()) this.skip(); // needs `make kube-tools` (kube-apiserver, etcd)
    api = await startApiServer();
    for (const [path, obj] of [
      ['/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } }],
      ['/api/v1/namespaces/shop/serviceaccounts', { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'weather' } }],
    ] as const) {
      const r = await api.call('POST', path, obj);
      assert.equal(r.status, 201, JSON.stringify(r.json));
    }
    dir = mkdtempSync(join(tmpdir(), 'tollgate-renew-'));
    pki = await LocalPki.open(join(dir, 'pki'));
    server = await pki.issue('controlplane', { commonName: 'cp', uris: ['spiffe://tollgate.local/ns/tollgate-system/sa/tollgate-controlplane'], ips: ['127.0.0.1'], usage: 'server' });
    certs = await WorkloadCertServer.start({
      host: '127.0.0.1', port: 0, tls: server, pki, trustDomain: 'tollgate.local', lifetimeMs: LIFETIME_MS,
      reviewer: apiServerReviewer({ server: api.server, token: api.adminToken, ca: api.ca }),
    });
  });

  const startXds = async (port: number, reg: SidecarRegistration): Promise<SidecarXds> => {
    const x = await SidecarXds.start({
      host: '127.0.0.1', port, tls: server, trustDomain: 'tollgate.local', forgetAfterMs: 60_000,
      defaults: { authz: { host: '127.0.0.1', port: 9191 }, authzTimeoutMs: 1000, maxRequestBytes: 1024, issuer: 'http://i', extProc: true, listenHost: '127.0.0.1' },
    });
    x.registry.setRegistrations([reg]);
    return x;
  };

  it('renews at half its lifetime; after the first certificate expired, a new mTLS xDS connection is still admitted', async () => {
    const [mcpPort, adminPort, healthPort] = [await freePort(), await freePort(), await freePort()];
    const url = `https://127.0.0.1:${certs.port}/v1/certificates`;
    const pod = {
      apiVersion: 'v1', kind: 'Pod',
      metadata: { name: 'weather-0', namespace: 'shop', labels: { app: 'weather' }, annotations: { 'tollgate.dev/mcp-port': String(mcpPort) } },
      spec: { serviceAccountName: 'weather', containers: [{ name: 'mcp', image: 'example/weather', ports: [{ containerPort: 8080 }] }] },
    };
    const injected = injectSidecars(pod, { workloadCerts: { url }, adminPort, healthPort });
    assert.ok(injected.injected);
    // What the webhook adds: the one-shot init container, then the renewer beside Envoy.
    const inits = (injected.pod.spec!.initContainers ?? []) as { name: string; args?: string[]; restartPolicy?: string }[];
    assert.deepEqual(inits.map((c) => [c.name, c.restartPolicy]), [['tollgate-identity', undefined], ['tollgate-identity-renew', 'Always'], ['tollgate-authz', 'Always'], ['tollgate-envoy', 'Always']]);
    const renewArgs = inits[1]!.args!;
    assert.equal(renewArgs.at(-1), '--renew');
    const created = await api.call('POST', '/api/v1/namespaces/shop/pods', injected.pod);
    assert.equal(created.status, 201, JSON.stringify(created.json));
    const uid = (created.json.metadata as { uid: string }).uid;
    const reg = registrationFromPod(created.json as unknown as PodLike, { trustDomain: 'tollgate.local', listenHost: '127.0.0.1' });
    assert.ok('registration' in reg, JSON.stringify(reg));

    // The pod's projected token and mesh CA, where the containers' arguments say, moved under dir.
    const tr = await api.call('POST', '/api/v1/namespaces/shop/serviceaccounts/weather/token', {
      apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest',
      spec: { audiences: ['tollgate-controlplane'], expirationSeconds: 600, boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: 'weather-0', uid } },
    });
    assert.equal(tr.status, 201, JSON.stringify(tr.json));
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, (tr.json.status as { token: string }).token);
    const caFile = join(dir, 'mesh-ca.crt');
    writeFileSync(caFile, pki.caPem);
    const identityDir = join(dir, 'identity');
    const local = (args: string[]): string[] => args.map((a) => a.replace('/var/run/tollgate/identity', identityDir).replace('/etc/tollgate/mesh-ca/ca.crt', caFile).replace('/var/run/secrets/tollgate/token', tokenFile));
    const self = selfCommand();

    // The init container, then the renewer, with the injected arguments.
    await run(self.cmd, [...self.args, ...local(inits[0]!.args!)]);
    const first = readFileSync(join(identityDir, 'tls.crt'), 'utf8');
    const firstExpiry = Date.parse(new X509Certificate(first).validTo);
    const firstKeyFiles = { cert: join(dir, 'first.crt'), key: join(dir, 'first.key') };
    copyFileSync(join(identityDir, 'tls.crt'), firstKeyFiles.cert);
    copyFileSync(join(identityDir, 'tls.key'), firstKeyFiles.key);
    const issuedAt = Date.now();
    assert.ok(firstExpiry - issuedAt <= LIFETIME_MS && firstExpiry - issuedAt > LIFETIME_MS / 2, `lifetime ${firstExpiry - issuedAt} ms`);
    renewer = spawn(self.cmd, [...self.args, ...local(renewArgs)], { stdio: ['ignore', 'ignore', 'pipe'] });
    renewer.stderr!.on('data', (c: Buffer) => { renewerLog += c.toString(); });

    xds = await startXds(0, reg.registration);
    const xdsPort = xds.port;
    const boot = JSON.stringify(sidecarBootstrap({ ...injected.plan, controlPlane: { host: '127.0.0.1', port: xdsPort } }))
      .replaceAll('/var/run/tollgate/identity', identityDir).replaceAll('/etc/tollgate/mesh-ca/ca.crt', caFile);
    const bootstrap = JSON.parse(boot) as JsonObject;
    (bootstrap.node as JsonObject).id = 'shop/weather-0';
    envoy = await startEnvoy({ config: bootstrap, adminPort, concurrency: 1 });
    await waitForListener(envoy, LISTENER_NAME, mcpPort);

    // Renewed at about half the lifetime (a new key and certificate), not at once and not late.
    const second = await until('a renewed certificate', () => {
      const now = readFileSync(join(identityDir, 'tls.crt'), 'utf8');
      return serialOf(now) !== serialOf(first) ? now : undefined;
    });
    const renewedAfter = Date.now() - issuedAt;
    // Not at once (the renewer starts from the init container's certificate), and before it expired.
    assert.ok(renewedAfter >= LIFETIME_MS * 0.3 && Date.now() < firstExpiry, `renewed after ${renewedAfter} ms (lifetime ${LIFETIME_MS} ms)`);
    assert.notEqual(readFileSync(join(identityDir, 'tls.key'), 'utf8'), readFileSync(firstKeyFiles.key, 'utf8'), 'a new key');
    await until('the renewer to log the renewal', () => (/renewed spiffe:\/\/tollgate\.local\/ns\/shop\/sa\/weather/.test(renewerLog) ? true : undefined), 5000);

    // Envoy took the new files: its admin lists the certificate in use.
    await until('Envoy to use a renewed certificate', async () => {
      const inUse = await envoy!.admin('/certs');
      const onDisk = serialOf(readFileSync(join(identityDir, 'tls.crt')));
      return inUse.toLowerCase().includes(onDisk) && !inUse.toLowerCase().includes(serialOf(first)) ? true : undefined;
    });
    assert.ok(serialOf(second) !== serialOf(first));

    // Past the first certificate's expiry, make Envoy connect again: a fresh TLS handshake.
    await sleep(Math.max(0, firstExpiry - Date.now() + 1000));
    assert.ok(Date.now() > firstExpiry);
    await xds.stop();
    xds = await startXds(xdsPort, reg.registration);
    await until('Envoy to be admitted again over mTLS', () => (xds!.status().streams.some((s) => s.node?.id === 'shop/weather-0') ? true : undefined));

    // The control: the first certificate itself is refused now; the server does check expiry.
    const old = await tryAds(xds.ads.address, grpc.credentials.createSsl(Buffer.from(pki.caPem), readFileSync(firstKeyFiles.key), readFileSync(firstKeyFiles.cert)), 'shop/weather-0', {}, 5000);
    old.close();
    assert.notEqual(old.code, null, 'an expired certificate must not be admitted');

    // The renewer stops cleanly on SIGTERM (pod shutdown).
    const exited = new Promise<number | null>((r) => renewer!.once('exit', (code) => r(code)));
    renewer.kill('SIGTERM');
    assert.equal(await exited, 0);
    renewer = null;
  });
});
