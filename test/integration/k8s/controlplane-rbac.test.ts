import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { apiServerReviewer, WorkloadCertServer } from '../../../src/controlplane/workload-certs.js';
import { KubeRegistrations } from '../../../src/k8s/registration-watch.js';
import { kubeConfigFor } from '../../../src/k8s/kubeconfig.js';
import { injectSidecars } from '../../../src/k8s/mutate.js';
import type { SidecarRegistration } from '../../../src/controlplane/registrations.js';
import { LocalPki } from '../../../src/pki/index.js';
import { requestWorkloadCertificate } from '../../../src/pki/request.js';
import { applyAll, eventually, installCrds, kubeTool, sharedKubeCluster, type KubeCluster } from '../../support/kube-cluster.js';

/**
 * The control plane's ClusterRole as shipped (kustomize and Helm render the same one), bound to
 * its ServiceAccount in a real kube-apiserver under RBAC: the real code paths of
 * `controlplane serve --registrations-from-kube --workload-certs` work with exactly that role
 * (list/watch pods and MCPServers, TokenReview), and the account can do nothing more (no Secrets,
 * no writes, not even get on one pod).
 */

type Obj = Record<string, unknown> & { kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> } };
const NS = 'cp-rbac';
const APP = 'cp-rbac-app';
const ROLE = 'tollgate-controlplane-rbac-test';
const SA_USER = `system:serviceaccount:${NS}:tollgate-controlplane`;

function run(bin: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(bin, args, { maxBuffer: 32 * 1024 * 1024 }, (err, stdout, stderr) => res({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

const docs = (text: string): Obj[] => parseAllDocuments(text).map((d) => d.toJS() as Obj).filter((o) => o && o.kind);
const find = (objs: Obj[], kind: string, name: string): Obj => {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(o, `${kind}/${name} is rendered`);
  return o;
};

describe('control plane RBAC as shipped, against a real kube-apiserver', function () {
  this.timeout(180_000);
  let cluster: KubeCluster;
  let dir: string;
  let role: Obj;
  let saToken: string;
  let apiCa: string;
  let regs: KubeRegistrations | null = null;
  let certs: WorkloadCertServer | null = null;
  const logs: string[] = [];

  /** A REST call with a bearer token (the service account's, or another's). */
  function call(token: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
    return new Promise((res, rej) => {
      const text = body === undefined ? undefined : JSON.stringify(body);
      const req = request(`${cluster.server}${path}`, { method, ca: apiCa, headers: { authorization: `Bearer ${token}`, ...(text ? { 'content-type': 'application/json' } : {}) } }, (r) => {
        let out = '';
        r.on('data', (c: Buffer) => { out += c.toString(); });
        r.on('end', () => { let json: Record<string, unknown> = {}; try { json = JSON.parse(out) as Record<string, unknown>; } catch { /* not JSON */ } res({ status: r.statusCode ?? 0, json }); });
      });
      req.on('error', rej);
      req.end(text);
    });
  }
  const admin = (method: string, path: string, body?: unknown): ReturnType<typeof call> => call(cluster.token, method, path, body);

  async function tokenFor(ns: string, sa: string, extra: Record<string, unknown> = {}): Promise<string> {
    const r = await admin('POST', `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 600, ...extra } });
    assert.equal(r.status, 201, JSON.stringify(r.json));
    return (r.json.status as { token: string }).token;
  }

  before(async function () {
    try { kubeTool('kube-apiserver'); kubeTool('kustomize'); kubeTool('helm'); kubeTool('kubectl'); } catch { this.skip(); }
    // What is shipped: kustomize and Helm render one and the same ClusterRole.
    const k = await run(kubeTool('kustomize'), ['build', resolve('manifests', 'base')]);
    assert.equal(k.code, 0, k.stderr);
    const h = await run(kubeTool('helm'), ['template', 'tollgate', resolve('manifests', 'helm', 'tollgate'), '--namespace', NS, '--kube-version', '1.34.0']);
    assert.equal(h.code, 0, h.stderr);
    const fromKustomize = find(docs(k.stdout), 'ClusterRole', 'tollgate-controlplane');
    const helmObjs = docs(h.stdout);
    role = find(helmObjs, 'ClusterRole', 'tollgate-controlplane');
    assert.deepEqual(role.rules, fromKustomize.rules);
    const binding = find(helmObjs, 'ClusterRoleBinding', 'tollgate-controlplane');
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'tollgate-controlplane', namespace: NS }]);

    cluster = await sharedKubeCluster();
    apiCa = (cluster.kc.getCurrentCluster()!.caData ? Buffer.from(cluster.kc.getCurrentCluster()!.caData!, 'base64').toString('utf8') : '');
    await installCrds(cluster.kc);
    dir = mkdtempSync(join(tmpdir(), 'tollgate-cprbac-'));
    for (const ns of [NS, APP]) await applyAll(cluster.kc, [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }]);
    // The rendered ServiceAccount, role and binding, the role under a test name (cluster-scoped
    // objects are shared with the other tests of this API server); its rules untouched.
    const sa = find(helmObjs, 'ServiceAccount', 'tollgate-controlplane');
    await applyAll(cluster.kc, [
      sa,
      { ...role, metadata: { name: ROLE } },
      { ...binding, metadata: { name: ROLE }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: ROLE } },
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'tollgate-controlplane-unbound', namespace: NS } },
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'weather', namespace: APP } },
    ] as never);
    saToken = await tokenFor(NS, 'tollgate-controlplane');
  });

  after(async () => {
    await regs?.stop();
    await certs?.close();
    if (cluster) {
      await admin('DELETE', `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${ROLE}`).catch(() => undefined);
      await admin('DELETE', `/apis/rbac.authorization.k8s.io/v1/clusterroles/${ROLE}`).catch(() => undefined);
      for (const ns of [NS, APP]) await admin('DELETE', `/api/v1/namespaces/${ns}`).catch(() => undefined);
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('kubectl auth can-i: yes for each call the control plane makes, no for anything else', async () => {
    const canI = async (...args: string[]): Promise<string> => {
      const r = await run(kubeTool('kubectl'), ['--kubeconfig', cluster.kubeconfigPath, 'auth', 'can-i', '--as', SA_USER, ...args]);
      return r.stdout.trim() || r.stderr.trim();
    };
    const yes: string[][] = [['list', 'pods', '--all-namespaces'], ['watch', 'pods', '--all-namespaces'],
      ['list', 'mcpservers.tollgate.dev', '--all-namespaces'], ['watch', 'mcpservers.tollgate.dev', '--all-namespaces'], ['create', 'tokenreviews.authentication.k8s.io']];
    const no: string[][] = [['get', 'secrets', '-n', NS], ['list', 'secrets', '--all-namespaces'], ['get', 'configmaps', '-n', APP], ['create', 'pods', '-n', APP],
      ['delete', 'pods', '-n', APP], ['patch', 'pods', '-n', APP], ['get', 'pods/exec', '-n', APP], ['create', 'serviceaccounts/token', '-n', APP],
      ['list', 'mcppolicies.tollgate.dev', '--all-namespaces'], ['update', 'mcpservers.tollgate.dev/status', '-n', APP], ['create', 'subjectaccessreviews.authorization.k8s.io'],
      ['create', 'certificatesigningrequests.certificates.k8s.io'], ['create', 'events', '-n', APP], ['list', 'nodes'], ['impersonate', 'serviceaccounts']];
    for (const a of yes) assert.equal(await canI(...a), 'yes', a.join(' '));
    for (const a of no) assert.equal(await canI(...a), 'no', a.join(' '));
  });

  it('with exactly that role, --registrations-from-kube registers an injected pod, with its MCPServer\'s resource URL', async () => {
    const server = { apiVersion: 'tollgate.dev/v1alpha1', kind: 'MCPServer', metadata: { name: 'weather', namespace: APP }, spec: { resource: 'https://weather.example.com/mcp', upstream: { service: 'weather', port: 8080 } } };
    await applyAll(cluster.kc, [server as never]);
    const pod = {
      apiVersion: 'v1', kind: 'Pod',
      metadata: { name: 'weather-0', namespace: APP, labels: { app: 'weather' } },
      spec: { serviceAccountName: 'weather', containers: [{ name: 'mcp', image: 'example/weather', ports: [{ containerPort: 8080 }] }] },
    };
    const r = injectSidecars(pod, { workloadCerts: { url: 'https://tollgate-controlplane.cp-rbac.svc:18443/v1/certificates' } });
    assert.ok(r.injected);
    const created = await admin('POST', `/api/v1/namespaces/${APP}/pods`, r.pod);
    assert.equal(created.status, 201, JSON.stringify(created.json));
    // As `controlplane serve --apiserver URL --apiserver-token F --apiserver-ca F` builds it, with the account's token.
    writeFileSync(join(dir, 'sa-token'), saToken);
    writeFileSync(join(dir, 'api-ca.crt'), apiCa);
    let got: SidecarRegistration[] = [];
    regs = await KubeRegistrations.start({
      kc: kubeConfigFor({ server: cluster.server, tokenFile: join(dir, 'sa-token'), caFile: join(dir, 'api-ca.crt') }),
      trustDomain: 'tollgate.local', listenHost: '0.0.0.0', log: (m) => logs.push(m), apply: (list) => { got = list; },
    });
    const reg = await eventually('the registration of the injected pod', async () => got.find((x) => x.nodeId === `${APP}/weather-0` && x.resourceUrl) ?? undefined);
    assert.equal(reg.identity, `spiffe://tollgate.local/ns/${APP}/sa/weather`);
    assert.equal(reg.resourceUrl, 'https://weather.example.com/mcp');
    assert.deepEqual(logs.filter((l) => /failed|cannot/.test(l)), [], 'no watch was refused');
    // The watch is live: a pod deleted loses its registration.
    await admin('DELETE', `/api/v1/namespaces/${APP}/pods/weather-0?gracePeriodSeconds=0`);
    await eventually('the registration dropped', async () => (got.some((x) => x.nodeId === `${APP}/weather-0`) ? undefined : true));
  });

  it('with exactly that role, the certificate endpoint reviews a pod\'s token and issues its certificate; without the binding it cannot', async () => {
    const pod = await admin('POST', `/api/v1/namespaces/${APP}/pods`, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'weather-1' }, spec: { serviceAccountName: 'weather', containers: [{ name: 'mcp', image: 'example/weather' }] } });
    assert.equal(pod.status, 201, JSON.stringify(pod.json));
    const podToken = await tokenFor(APP, 'weather', { audiences: ['tollgate-controlplane'], boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: 'weather-1', uid: (pod.json.metadata as { uid: string }).uid } });
    writeFileSync(join(dir, 'pod-token'), podToken);
    const pki = await LocalPki.open(join(dir, 'pki'));
    const tls = await pki.issue('controlplane', { commonName: 'cp', uris: [`spiffe://tollgate.local/ns/${NS}/sa/tollgate-controlplane`], ips: ['127.0.0.1'], usage: 'server' });
    // As `controlplane serve --apiserver-token FILE` runs it: the token file is read for every review.
    const tokenFile = join(dir, 'cp-token');
    writeFileSync(tokenFile, saToken);
    certs = await WorkloadCertServer.start({
      host: '127.0.0.1', port: 0, tls, pki, trustDomain: 'tollgate.local',
      reviewer: apiServerReviewer({ server: cluster.server, token: () => readFileSync(tokenFile, 'utf8').trim(), ca: apiCa }),
    });
    const issued = await requestWorkloadCertificate({ url: `https://127.0.0.1:${certs.port}/v1/certificates`, ca: pki.caPem, tokenFile: join(dir, 'pod-token'), outDir: join(dir, 'out') });
    assert.equal(issued.spiffeId, `spiffe://tollgate.local/ns/${APP}/sa/weather`);
    // The token of an account without the binding, in the same file: the API server refuses the
    // review, and so the pod gets no certificate (this is the rule that makes the difference).
    writeFileSync(tokenFile, await tokenFor(NS, 'tollgate-controlplane-unbound'));
    await assert.rejects(
      requestWorkloadCertificate({ url: `https://127.0.0.1:${certs.port}/v1/certificates`, ca: pki.caPem, tokenFile: join(dir, 'pod-token'), outDir: join(dir, 'out2') }),
      /TokenReview failed: HTTP 403/,
    );
  });

  it('the account\'s token itself is refused everything else (Secrets, single-pod reads, writes)', async () => {
    const refused: [string, string, unknown?][] = [
      ['GET', '/api/v1/secrets'], ['GET', `/api/v1/namespaces/${NS}/secrets`], ['GET', `/api/v1/namespaces/${APP}/pods/weather-1`],
      ['GET', `/api/v1/namespaces/${APP}/configmaps`], ['GET', '/apis/tollgate.dev/v1alpha1/mcppolicies'],
      ['POST', `/api/v1/namespaces/${APP}/pods`, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' }, spec: { containers: [{ name: 'c', image: 'x' }] } }],
      ['DELETE', `/api/v1/namespaces/${APP}/pods/weather-1`],
      ['POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec: { user: 'x', resourceAttributes: { verb: 'get', resource: 'pods' } } }],
    ];
    for (const [method, path, body] of refused) {
      const r = await call(saToken, method, path, body);
      assert.equal(r.status, 403, `${method} ${path}: ${JSON.stringify(r.json).slice(0, 200)}`);
    }
    assert.equal((await call(saToken, 'GET', '/api/v1/pods')).status, 200, 'list pods is what it may do');
  });
});
