import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { apiServerReviewer, WorkloadCertServer } from '../../../src/controlplane/workload-certs.js';
import { SidecarXds } from '../../../src/controlplane/xds.js';
import { createCsr, LocalPki, type CertFiles } from '../../../src/pki/index.js';
import { KubeRegistrations } from '../../../src/k8s/registration-watch.js';
import { kubeConfigFor } from '../../../src/k8s/kubeconfig.js';
import { injectSidecars } from '../../../src/k8s/mutate.js';
import { sidecarBootstrap } from '../../../src/k8s/sidecars.js';
import { startEnvoy, type RunningEnvoy } from '../../../src/envoy/run.js';
import { CERT_SDS_FILE, writeCertSdsFile } from '../../../src/envoy/bootstrap.js';
import { waitForListener } from '../../../src/envoy/listeners.js';
import { LISTENER_NAME } from '../../../src/envoy/resources.js';
import type { JsonObject } from '../../../src/envoy/protojson.js';
import { freePort } from '../../../src/util/net.js';
import { haveKubeTools, startApiServer, type ApiServer } from './kube-apiserver.js';
import { tryAds } from './ads-client.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, f: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await f())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/**
 * Issue 11: with xDS mTLS-only, an injected pod gets its config because the control plane derives
 * its registration from the API server (`controlplane serve --registrations-from-kube`): identity
 * from namespace + service account, node id from the pod, upstream from its spec. Real
 * kube-apiserver, real workload certificates (TokenRequest → TokenReview → CSR), real Envoy.
 */
describe('trust: sidecar registrations derived from the API server', function () {
  this.timeout(180_000);
  let api: ApiServer;
  let dir: string;
  let pki: LocalPki;
  let certs: WorkloadCertServer;
  let xds: SidecarXds;
  let regs: KubeRegistrations;
  const logs: string[] = [];
  let mcpPort: number;
  let adminPort: number;
  let healthPort: number;

  async function create(ns: string, kind: 'serviceaccounts' | 'pods', obj: Record<string, unknown>): Promise<Record<string, unknown>> {
    const r = await api.call('POST', `/api/v1/namespaces/${ns}/${kind}`, obj);
    assert.equal(r.status, 201, JSON.stringify(r.json));
    return r.json;
  }

  /** An injected pod, as the webhook would have admitted it. */
  function injectedPod(ns: string, name: string, sa: string): { pod: Record<string, unknown>; plan: ReturnType<typeof injectSidecars> } {
    const pod = {
      apiVersion: 'v1', kind: 'Pod',
      metadata: { name, namespace: ns, labels: { app: 'weather' }, annotations: { 'tollgate.dev/mcp-port': String(mcpPort) } },
      spec: { serviceAccountName: sa, containers: [{ name: 'mcp', image: 'example/weather', ports: [{ containerPort: 8080 }] }] },
    };
    const r = injectSidecars(pod, { workloadCerts: { url: `https://127.0.0.1:${certs.port}/v1/certificates` }, adminPort, healthPort });
    assert.ok(r.injected);
    return { pod: r.pod as Record<string, unknown>, plan: r };
  }

  /** The pod's certificate, the way its tollgate-identity init container gets it. */
  async function certFor(ns: string, sa: string, pod: string, uid: string): Promise<CertFiles> {
    const tr = await api.call('POST', `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`, {
      apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest',
      spec: { audiences: ['tollgate-controlplane'], expirationSeconds: 600, boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: pod, uid } },
    });
    assert.equal(tr.status, 201, JSON.stringify(tr.json));
    const token = (tr.json.status as { token: string }).token;
    const csr = await createCsr('ignored');
    const body = JSON.stringify({ csr: csr.csrPem });
    const got = await new Promise<{ certificate: string }>((resolve, reject) => {
      const req = request(`https://127.0.0.1:${certs.port}/v1/certificates`, { method: 'POST', ca: pki.caPem, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } }, (res) => {
        let out = '';
        res.on('data', (c: Buffer) => { out += c.toString(); });
        res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(out) as { certificate: string }) : reject(new Error(`${res.statusCode} ${out}`))));
      });
      req.on('error', reject);
      req.end(body);
    });
    const d = join(dir, `${ns}-${pod}`);
    mkdirSync(d, { recursive: true });
    const files = { cert: join(d, 'tls.crt'), key: join(d, 'tls.key'), ca: join(d, 'ca.crt') };
    writeFileSync(files.cert, got.certificate);
    writeFileSync(files.key, csr.keyPem, { mode: 0o600 });
    writeFileSync(files.ca, pki.caPem);
    await writeCertSdsFile(join(d, CERT_SDS_FILE), files);
    return files;
  }

  const creds = (f: CertFiles): grpc.ChannelCredentials => grpc.credentials.createSsl(readFileSync(f.ca), readFileSync(f.key), readFileSync(f.cert));
  const nodes = (): string[] => xds.registry.registered.map((r) => r.nodeId);

  before(async function () {
    if (!haveKubeTools()) this.skip(); // needs `make kube-tools` (kube-apiserver, etcd)
    api = await startApiServer();
    [mcpPort, adminPort, healthPort] = [await freePort(), await freePort(), await freePort()];
    for (const ns of ['shop', 'other']) {
      const r = await api.call('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
      assert.equal(r.status, 201);
    }
    for (const [ns, sa] of [['shop', 'weather'], ['shop', 'intruder'], ['other', 'weather']]) await create(ns!, 'serviceaccounts', { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa } });
    dir = mkdtempSync(join(tmpdir(), 'tollgate-kreg-'));
    pki = await LocalPki.open(join(dir, 'pki'));
    const server = await pki.issue('controlplane', { commonName: 'cp', uris: ['spiffe://tollgate.local/ns/tollgate-system/sa/tollgate-controlplane'], ips: ['127.0.0.1'], usage: 'server' });
    certs = await WorkloadCertServer.start({
      host: '127.0.0.1', port: 0, tls: server, pki, trustDomain: 'tollgate.local',
      reviewer: apiServerReviewer({ server: api.server, token: api.adminToken, ca: api.ca }),
    });
    xds = await SidecarXds.start({
      host: '127.0.0.1', port: 0, tls: server, trustDomain: 'tollgate.local', forgetAfterMs: 60_000, log: (m) => logs.push(m),
      defaults: { authz: { host: '127.0.0.1', port: 9191 }, authzTimeoutMs: 1000, maxRequestBytes: 1024, issuer: 'http://i', extProc: true, listenHost: '127.0.0.1' },
    });
    // As `controlplane serve --apiserver URL --apiserver-token F --apiserver-ca F` builds it.
    writeFileSync(join(dir, 'api-token'), api.adminToken);
    writeFileSync(join(dir, 'api-ca.crt'), api.ca);
    regs = await KubeRegistrations.start({
      kc: kubeConfigFor({ server: api.server, tokenFile: join(dir, 'api-token'), caFile: join(dir, 'api-ca.crt') }),
      trustDomain: 'tollgate.local', listenHost: '127.0.0.1', log: (m) => logs.push(m),
      apply: (list) => xds.registry.setRegistrations(list),
    });
  });

  after(async () => {
    await regs?.stop();
    await xds?.stop();
    await certs?.close();
    await api?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  let weather: { uid: string; cert: CertFiles; plan: ReturnType<typeof injectSidecars> };
  let envoy: RunningEnvoy | null = null;

  it('a pod created in the API server gets a registration, and its Envoy with the pod\'s certificate gets its config', async () => {
    assert.deepEqual(nodes(), []);
    // Not injected: no registration, whatever it is called.
    await create('shop', 'pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'plain' }, spec: { serviceAccountName: 'weather', containers: [{ name: 'c', image: 'x', ports: [{ containerPort: 80 }] }] } });
    const { pod, plan } = injectedPod('shop', 'weather-0', 'weather');
    const created = await create('shop', 'pods', pod);
    const uid = (created.metadata as { uid: string }).uid;
    await until('the registration of shop/weather-0', () => nodes().includes('shop/weather-0'));
    assert.deepEqual(nodes(), ['shop/weather-0']);
    const reg = xds.registry.registered[0]!;
    assert.deepEqual(
      { identity: reg.identity, server: reg.server, upstream: reg.upstream, listen: reg.listen, authz: reg.authz, podBound: reg.podBound },
      { identity: 'spiffe://tollgate.local/ns/shop/sa/weather', server: 'weather', upstream: { host: '127.0.0.1', port: 8080 }, listen: { host: '127.0.0.1', port: mcpPort }, authz: { host: '127.0.0.1', port: 9191 }, podBound: true },
    );
    const cert = await certFor('shop', 'weather', 'weather-0', uid);
    weather = { uid, cert, plan };

    // The injected bootstrap, run by a real Envoy with the certificate the init container fetched.
    assert.ok(plan.injected);
    const boot = JSON.stringify(sidecarBootstrap({ ...plan.plan, controlPlane: { host: '127.0.0.1', port: xds.port } }))
      .replaceAll(`/var/run/tollgate/identity/${CERT_SDS_FILE}`, join(dirname(cert.cert), CERT_SDS_FILE))
      .replaceAll('/var/run/tollgate/identity/tls.crt', cert.cert).replaceAll('/var/run/tollgate/identity/tls.key', cert.key)
      .replaceAll('/etc/tollgate/mesh-ca/ca.crt', cert.ca);
    const bootstrap = JSON.parse(boot) as JsonObject;
    // The pod passes its name at run time ($(TOLLGATE_NODE_ID)); here it is written in.
    (bootstrap.node as JsonObject).id = 'shop/weather-0';
    envoy = await startEnvoy({ config: bootstrap, adminPort, concurrency: 1 });
    await waitForListener(envoy, LISTENER_NAME, mcpPort);
    assert.equal(xds.status().streams[0]?.node?.id, 'shop/weather-0');
    assert.deepEqual(xds.registry.known, ['shop/weather-0']);
    const clusters = await envoy.admin('/clusters?format=json');
    assert.match(clusters, /"port_value":\s*8080/, 'the upstream from the pod spec');
  });

  it('refuses another namespace, another service account and a sibling pod claiming that node id', async () => {
    const other = injectedPod('other', 'weather-0', 'weather');
    const o = await create('other', 'pods', other.pod);
    const intruder = injectedPod('shop', 'intruder-0', 'intruder');
    const i = await create('shop', 'pods', intruder.pod);
    const sibling = injectedPod('shop', 'weather-1', 'weather');
    const s = await create('shop', 'pods', sibling.pod);
    await until('three more registrations', () => nodes().length === 4);
    assert.deepEqual(nodes(), ['other/weather-0', 'shop/intruder-0', 'shop/weather-0', 'shop/weather-1']);
    const cases: [string, CertFiles, RegExp][] = [
      ['another namespace, same service account name', await certFor('other', 'weather', 'weather-0', (o.metadata as { uid: string }).uid), /does not match the certificate's identity spiffe:\/\/tollgate\.local\/ns\/other\/sa\/weather/],
      ['another service account', await certFor('shop', 'intruder', 'intruder-0', (i.metadata as { uid: string }).uid), /does not match the certificate's identity spiffe:\/\/tollgate\.local\/ns\/shop\/sa\/intruder, which is registered as node "shop\/intruder-0"/],
      ['a sibling pod of the same service account', await certFor('shop', 'weather', 'weather-1', (s.metadata as { uid: string }).uid), /belongs to another pod: the certificate was issued to "shop\/weather-1"/],
    ];
    const refusedBefore = xds.status().refusals.node_id_mismatch;
    for (const [what, cert, re] of cases) {
      const a = await tryAds(xds.ads.address, creds(cert), 'shop/weather-0', {});
      a.close();
      assert.equal(a.code, grpc.status.PERMISSION_DENIED, `${what}: ${a.details}`);
      assert.match(a.details, re, what);
    }
    assert.equal(xds.status().refusals.node_id_mismatch, refusedBefore + 3);
    // The sibling is served as itself.
    const own = await tryAds(xds.ads.address, creds(cases[2]![1]), 'shop/weather-1', {});
    own.close();
    assert.equal(own.code, null, own.details);
  });

  it('a pod deleted loses its registration and snapshot at once; its Envoy is disconnected and refused', async () => {
    assert.ok(envoy && weather);
    const r = await api.call('DELETE', '/api/v1/namespaces/shop/pods/weather-0?gracePeriodSeconds=0');
    assert.equal(r.status, 200, JSON.stringify(r.json));
    await until('the registration to go', () => !nodes().includes('shop/weather-0'));
    await until('the snapshot to go', () => !xds.registry.known.includes('shop/weather-0'), 5000);
    await until('the Envoy stream to end', () => !xds.status().streams.some((st) => st.node?.id === 'shop/weather-0'), 10_000);
    assert.ok(logs.some((l) => l.includes('forgot shop/weather-0')), logs.join('\n'));
    // The certificate is still valid (1 day), but there is nothing registered for it any more.
    const again = await tryAds(xds.ads.address, creds(weather.cert), 'shop/weather-0', {});
    again.close();
    assert.equal(again.code, grpc.status.PERMISSION_DENIED, again.details);
    assert.match(again.details, /does not match|no sidecar is registered/);
    await envoy.stop();
    envoy = null;
  });
});
