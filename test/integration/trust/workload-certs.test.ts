import { strict as assert } from 'node:assert';
import { X509Certificate } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { apiServerReviewer, WorkloadCertServer } from '../../../src/controlplane/workload-certs.js';
import { formatRegistrations } from '../../../src/controlplane/registrations.js';
import { SidecarXds } from '../../../src/controlplane/xds.js';
import { createCsr, LocalPki, uriSans, type CertFiles } from '../../../src/pki/index.js';
import { haveKubeTools, startApiServer, type ApiServer } from './kube-apiserver.js';
import { tryAds } from './ads-client.js';
import { selfCommand } from '../../../src/util/self.js';
import { freePort } from '../../../src/util/net.js';
import { injectSidecars } from '../../../src/k8s/mutate.js';
import { sidecarBootstrap } from '../../../src/k8s/sidecars.js';
import { startEnvoy } from '../../../src/envoy/run.js';
import { waitForListener } from '../../../src/envoy/listeners.js';
import { LISTENER_NAME } from '../../../src/envoy/resources.js';
import type { JsonObject } from '../../../src/envoy/protojson.js';

const run = promisify(execFile);

const WEATHER = 'spiffe://tollgate.local/ns/shop/sa/weather';

/**
 * In a cluster a sidecar's identity is its pod's service account, checked with the API server:
 * a real kube-apiserver issues projected tokens (TokenRequest) and answers the control plane's
 * TokenReview; the certificate that comes back is accepted by the mTLS xDS server as that identity.
 */
describe('trust: workload certificates from service-account tokens, checked with a real API server', function () {
  this.timeout(150_000);
  let api: ApiServer;
  let dir: string;
  let pki: LocalPki;
  let server: CertFiles;
  let certs: WorkloadCertServer;
  let podUid: string;

  async function token(body: Record<string, unknown>, sa = 'weather'): Promise<string> {
    const r = await api.call('POST', `/api/v1/namespaces/shop/serviceaccounts/${sa}/token`, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 600, ...body } });
    assert.equal(r.status, 201, JSON.stringify(r.json));
    return (r.json.status as { token: string }).token;
  }
  const bound = (audiences: string[]): Record<string, unknown> => ({ audiences, boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: 'weather-0', uid: podUid } });

  function post(auth: string | null, body: string): Promise<{ status: number; json: Record<string, string> }> {
    return new Promise((resolve, reject) => {
      const req = request(`https://127.0.0.1:${certs.port}/v1/certificates`, {
        method: 'POST', ca: pki.caPem, headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) },
      }, (res) => {
        let out = '';
        res.on('data', (c: Buffer) => { out += c.toString(); });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(out) as Record<string, string> }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  before(async function () {
    if (!haveKubeTools()) this.skip(); // needs `make kube-tools` (kube-apiserver, etcd)
    api = await startApiServer();
    for (const [path, obj] of [
      ['/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } }],
      ['/api/v1/namespaces/shop/serviceaccounts', { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'weather' } }],
      ['/api/v1/namespaces/shop/serviceaccounts', { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'intruder' } }],
      ['/api/v1/namespaces/shop/pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'weather-0' }, spec: { serviceAccountName: 'weather', containers: [{ name: 'mcp', image: 'example/weather' }] } }],
    ] as const) {
      const r = await api.call('POST', path, obj);
      assert.equal(r.status, 201, JSON.stringify(r.json));
      if (obj.kind === 'Pod') podUid = (r.json.metadata as { uid: string }).uid;
    }
    dir = mkdtempSync(join(tmpdir(), 'tollgate-wcert-'));
    pki = await LocalPki.open(join(dir, 'pki'));
    server = await pki.issue('controlplane', { commonName: 'cp', uris: ['spiffe://tollgate.local/ns/tollgate-system/sa/tollgate-controlplane'], ips: ['127.0.0.1'], usage: 'server' });
    certs = await WorkloadCertServer.start({
      host: '127.0.0.1', port: 0, tls: server, pki, trustDomain: 'tollgate.local',
      reviewer: apiServerReviewer({ server: api.server, token: api.adminToken, ca: api.ca }),
    });
  });

  after(async () => {
    await certs?.close();
    await api?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a pod-bound token for the control plane\'s audience gets a certificate naming only its service account', async () => {
    const csr = await createCsr('spiffe://tollgate.local/ns/tollgate-system/sa/tollgate-controlplane');
    const r = await post(`Bearer ${await token(bound(['tollgate-controlplane']))}`, JSON.stringify({ csr: csr.csrPem }));
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.spiffe_id, WEATHER);
    const cert = new X509Certificate(r.json.certificate!);
    assert.deepEqual(uriSans(r.json.certificate!), [WEATHER], 'the names asked for in the CSR are ignored');
    assert.ok(cert.checkIssued(new X509Certificate(pki.caPem)));
    assert.match(cert.subject, /CN=shop\/weather-0/);
    assert.ok(Date.parse(cert.validTo) - Date.now() < 2 * 86_400_000, 'short-lived');

    // That certificate is what the sidecar presents to xDS: admitted as its registered node.
    const registrations = join(dir, 'registrations.yaml');
    writeFileSync(registrations, formatRegistrations([{ identity: WEATHER, nodeId: 'shop/weather-0', server: 'weather', namespace: 'shop', listen: { host: '0.0.0.0', port: 10000 }, mcpPath: '/mcp', upstream: { host: '127.0.0.1', port: 8080 } }]));
    const xds = await SidecarXds.start({
      host: '127.0.0.1', port: 0, tls: server, trustDomain: 'tollgate.local', registrationsFile: registrations,
      defaults: { authz: { host: '127.0.0.1', port: 9191 }, authzTimeoutMs: 1000, maxRequestBytes: 1024, issuer: 'http://i', extProc: true, listenHost: '0.0.0.0' },
    });
    try {
      // As the pod does it: `tollgate cert request` with the projected token in a file.
      const tokenFile = join(dir, 'token');
      writeFileSync(tokenFile, await token(bound(['tollgate-controlplane'])));
      const caFile = join(dir, 'mesh-ca.crt');
      writeFileSync(caFile, pki.caPem);
      const self = selfCommand();
      const out = join(dir, 'identity');
      const { stdout } = await run(self.cmd, [...self.args, 'cert', 'request', '--url', `https://127.0.0.1:${certs.port}/v1/certificates`, '--ca', caFile, '--token-file', tokenFile, '--out', out]);
      assert.match(stdout, new RegExp(`^${WEATHER}: `));
      assert.equal(statSync(join(out, 'tls.key')).mode & 0o777, 0o600);
      const creds = grpc.credentials.createSsl(readFileSync(join(out, 'ca.crt')), readFileSync(join(out, 'tls.key')), readFileSync(join(out, 'tls.crt')));
      const a = await tryAds(xds.ads.address, creds, 'shop/weather-0', {});
      a.close();
      assert.equal(a.code, null, a.details);
      assert.ok(a.responses.length > 0);
      // The same identity claiming another pod's node id is refused.
      const b = await tryAds(xds.ads.address, creds, 'shop/payments-0', {});
      b.close();
      assert.equal(b.code, grpc.status.PERMISSION_DENIED);
    } finally {
      await xds.stop();
    }
  });

  it('the injected Envoy, with the certificate the pod got, is configured over mTLS xDS as its registered node', async () => {
    const listen = await freePort();
    const adminPort = await freePort();
    const healthPort = await freePort();
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'weather-0', namespace: 'shop', labels: { app: 'weather' } }, spec: { serviceAccountName: 'weather', containers: [{ name: 'mcp', image: 'example/weather', ports: [{ containerPort: 8080 }] }] } };
    const result = injectSidecars(pod, { workloadCerts: { url: `https://127.0.0.1:${certs.port}/v1/certificates` }, adminPort, healthPort });
    assert.ok(result.injected);
    const init = (result.pod.spec!.initContainers ?? []) as Array<{ name: string; args?: string[] }>;
    assert.equal(init[0]!.name, 'tollgate-identity', 'the certificate is fetched before any sidecar starts');
    assert.deepEqual(init[0]!.args!.slice(0, 4), ['cert', 'request', '--url', `https://127.0.0.1:${certs.port}/v1/certificates`]);
    const vols = JSON.stringify(result.pod.spec!.volumes);
    assert.match(vols, /"serviceAccountToken":\{"audience":"tollgate-controlplane"/);
    assert.match(vols, /"medium":"Memory"/);

    // Run what the init container runs, then the injected bootstrap with the files where it expects them.
    const identityDir = join(dir, 'pod-identity');
    const tokenFile = join(dir, 'pod-token');
    writeFileSync(tokenFile, await token(bound(['tollgate-controlplane'])));
    const caFile = join(dir, 'pod-ca.crt');
    writeFileSync(caFile, pki.caPem);
    const self = selfCommand();
    await run(self.cmd, [...self.args, 'cert', 'request', '--url', `https://127.0.0.1:${certs.port}/v1/certificates`, '--ca', caFile, '--token-file', tokenFile, '--out', identityDir]);
    const registrations = join(dir, 'registrations-envoy.yaml');
    writeFileSync(registrations, formatRegistrations([{ identity: WEATHER, nodeId: 'shop/weather-0', server: 'weather', namespace: 'shop', listen: { host: '127.0.0.1', port: listen }, mcpPath: '/mcp', upstream: { host: '127.0.0.1', port: 8080 } }]));
    const xds = await SidecarXds.start({
      host: '127.0.0.1', port: 0, tls: server, trustDomain: 'tollgate.local', registrationsFile: registrations,
      defaults: { authz: { host: '127.0.0.1', port: 9191 }, authzTimeoutMs: 1000, maxRequestBytes: 1024, issuer: 'http://i', extProc: true, listenHost: '127.0.0.1' },
    });
    const plan = result.plan;
    const boot = JSON.stringify(sidecarBootstrap({ ...plan, controlPlane: { host: '127.0.0.1', port: xds.port } }))
      .replaceAll('/var/run/tollgate/identity', identityDir).replaceAll('/etc/tollgate/mesh-ca/ca.crt', caFile);
    const envoy = await startEnvoy({ config: JSON.parse(boot) as JsonObject, adminPort, concurrency: 1 });
    try {
      await waitForListener(envoy, LISTENER_NAME, listen);
      assert.equal(xds.status().streams[0]?.node?.id, 'shop/weather-0');
      assert.deepEqual(xds.registry.known, ['shop/weather-0']);
    } finally {
      await envoy.stop();
      await xds.stop();
    }
  });

  it('refuses: no token, a forged token, another audience, a token not bound to a pod, a CSR not signed by its key', async () => {
    const csr = (await createCsr('x')).csrPem;
    const body = JSON.stringify({ csr });
    const noToken = await post(null, body);
    assert.equal(noToken.status, 401);
    assert.match(noToken.json.error!, /projected service-account token/);
    const forged = await post('Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6c2hvcDp3ZWF0aGVyIn0.AAAA', body);
    assert.equal(forged.status, 401, JSON.stringify(forged.json));
    const otherAud = await post(`Bearer ${await token(bound(['some-other-service']))}`, body);
    assert.equal(otherAud.status, 401, JSON.stringify(otherAud.json)); // the API server itself refuses a token for other audiences
    const unbound = await post(`Bearer ${await token({ audiences: ['tollgate-controlplane'] })}`, body);
    assert.equal(unbound.status, 403, JSON.stringify(unbound.json));
    assert.match(unbound.json.error!, /not bound to a pod/);
    // Flip a bit of the signature: the request no longer proves possession of its key.
    const der = Buffer.from(csr.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');
    der[der.length - 2] = der[der.length - 2]! ^ 0x01;
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    const bad = await post(`Bearer ${await token(bound(['tollgate-controlplane']))}`, JSON.stringify({ csr: tampered }));
    assert.equal(bad.status, 400, JSON.stringify(bad.json));
    assert.match(bad.json.error!, /not signed by its own key|not a PKCS#10/);
    const notJson = await post(`Bearer ${await token(bound(['tollgate-controlplane']))}`, 'csr=1');
    assert.equal(notJson.status, 400);
  });

  it('another service account of the same namespace gets its own identity, never the one it wants', async () => {
    const r = await api.call('POST', '/api/v1/namespaces/shop/pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'intruder-0' }, spec: { serviceAccountName: 'intruder', containers: [{ name: 'c', image: 'x' }] } });
    assert.equal(r.status, 201);
    const uid = (r.json.metadata as { uid: string }).uid;
    const t = await token({ audiences: ['tollgate-controlplane'], boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: 'intruder-0', uid } }, 'intruder');
    const got = await post(`Bearer ${t}`, JSON.stringify({ csr: (await createCsr(WEATHER)).csrPem }));
    assert.equal(got.status, 200);
    assert.equal(got.json.spiffe_id, 'spiffe://tollgate.local/ns/shop/sa/intruder');
  });
});
