import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyPatch, parsePatch } from '../../../src/k8s/jsonpatch.js';
import { injectSidecars } from '../../../src/k8s/mutate.js';
import type { PodLike } from '../../../src/k8s/types.js';
import { WebhookServer, type WebhookLogEntry } from '../../../src/k8s/webhook.js';
import { mcpPod, podCreateReview } from '../../unit/k8s/fixtures.js';

const SERVICE_NAME = 'tollgate-webhook.tollgate-system.svc';
const SCRIPT = join(process.cwd(), 'manifests', 'webhook-tls.sh');

interface Reply { status: number; headers: Record<string, string | string[] | undefined>; text: string; json: () => Record<string, unknown> }

/** Makes a serving certificate the way an operator would: with manifests/webhook-tls.sh. */
function makeCerts(dir: string): void {
  execFileSync('bash', [SCRIPT, '--out', dir, '--days', '2'], { stdio: 'pipe' });
}

function call(server: WebhookServer, ca: string, opts: { method?: string; path?: string; body?: string | Buffer; contentType?: string | null; chunked?: boolean } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = {};
    if (opts.contentType !== null) headers['content-type'] = opts.contentType ?? 'application/json';
    if (opts.body !== undefined && !opts.chunked) headers['content-length'] = Buffer.byteLength(opts.body);
    const req = httpsRequest({
      host: '127.0.0.1', port: server.port, method: opts.method ?? 'POST', path: opts.path ?? '/mutate',
      ca, servername: SERVICE_NAME, headers, agent: false,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) as Record<string, unknown> });
      });
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

function servedCertificate(server: WebhookServer, ca: string): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port: server.port, ca, servername: SERVICE_NAME }, () => {
      const raw = s.getPeerCertificate().raw;
      s.end();
      resolve(new X509Certificate(raw));
    });
    s.on('error', reject);
  });
}

describe('k8s/webhook over HTTPS (integration)', function () {
  this.timeout(30000);
  let dir: string;
  let ca: string;
  let server: WebhookServer;
  const logs: WebhookLogEntry[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-webhook-'));
    makeCerts(join(dir, 'live'));
    ca = readFileSync(join(dir, 'live', 'ca.crt'), 'utf8');
    server = await WebhookServer.start({
      certFile: join(dir, 'live', 'tls.crt'), keyFile: join(dir, 'live', 'tls.key'),
      host: '127.0.0.1', port: 0, reloadIntervalMs: 0, maxBodyBytes: 256 * 1024, log: (e) => logs.push(e),
    });
  });

  after(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves /healthz with the certificate for the Service name', async () => {
    const r = await call(server, ca, { method: 'GET', path: '/healthz' });
    assert.equal(r.status, 200);
    assert.equal(r.text, 'ok\n');
    const cert = await servedCertificate(server, ca);
    assert.match(cert.subjectAltName ?? '', new RegExp(`DNS:${SERVICE_NAME.replace(/\./g, '\\.')}`));
  });

  it('mutates a pod: the returned JSON Patch applied to the pod gives what injectSidecars gives', async () => {
    const pod = mcpPod();
    delete pod.metadata!.namespace;
    const r = await call(server, ca, { body: JSON.stringify(podCreateReview(pod, { uid: 'b9e1c1c4-1111-4c3e-9a55-0a0b0c0d0e0f' })) });
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /application\/json/);
    const review = r.json();
    assert.equal(review.apiVersion, 'admission.k8s.io/v1');
    assert.equal(review.kind, 'AdmissionReview');
    const response = review.response as { uid: string; allowed: boolean; patchType: string; patch: string };
    assert.equal(response.uid, 'b9e1c1c4-1111-4c3e-9a55-0a0b0c0d0e0f');
    assert.equal(response.allowed, true);
    assert.equal(response.patchType, 'JSONPatch');
    const patch = parsePatch(JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')));
    const mutated = applyPatch(pod, patch);
    assert.deepEqual(mutated, injectSidecars(pod, { namespace: 'mcp-demo' }).pod);
    assert.deepEqual((mutated as PodLike).spec!.initContainers!.map((c) => c.name), ['tollgate-authz', 'tollgate-envoy']);
  });

  it('admits an opted-out pod unchanged and denies an ungovernable one with a reason', async () => {
    const out = (await call(server, ca, { body: JSON.stringify(podCreateReview(mcpPod({ annotations: { 'tollgate.dev/inject': 'false' } }))) })).json();
    assert.deepEqual(out.response, { uid: '705ab4f5-6393-11e8-b7cc-42010a800002', allowed: true });
    const bad = mcpPod({ annotations: { 'tollgate.dev/authz': 'maybe' } });
    const denied = (await call(server, ca, { body: JSON.stringify(podCreateReview(bad)) })).json().response as { allowed: boolean; status: { code: number; message: string } };
    assert.equal(denied.allowed, false);
    assert.equal(denied.status.code, 400);
    assert.match(denied.status.message, /tollgate\.dev\/authz must be "sidecar" or "shared", not "maybe"/);
  });

  const malformed: [string, { method?: string; path?: string; body?: string; contentType?: string | null; chunked?: boolean }, number, RegExp][] = [
    ['a body that is not JSON', { body: '{"apiVersion": "admission.k8s.io/v1", kind' }, 400, /body is not valid JSON/],
    ['a review without a request uid', { body: JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE' } }) }, 400, /malformed AdmissionReview: request\.uid/],
    ['a v1beta1 review', { body: JSON.stringify({ ...podCreateReview(mcpPod()), apiVersion: 'admission.k8s.io/v1beta1' }) }, 400, /admissionReviewVersions: \[v1\]/],
    ['a pod CREATE without the pod', { body: JSON.stringify(podCreateReview(undefined)) }, 400, /request\.object must be the pod/],
    ['a GET on /mutate', { method: 'GET' }, 405, /use POST \/mutate/],
    ['an unknown path', { path: '/validate', body: '{}' }, 404, /no such endpoint \/validate/],
    ['a non-JSON content type', { body: 'x', contentType: 'text/plain' }, 415, /content-type must be application\/json/],
    ['an oversized review', { body: JSON.stringify({ pad: 'x'.repeat(300 * 1024) }) }, 413, /exceeds the 262144-byte limit/],
    ['an oversized review sent without a length', { body: JSON.stringify({ pad: 'x'.repeat(300 * 1024) }), chunked: true }, 413, /exceeds the 262144-byte limit/],
  ];
  for (const [name, req, status, message] of malformed) {
    it(`answers ${name} with ${status} and a message, and keeps serving`, async () => {
      const r = await call(server, ca, req);
      assert.equal(r.status, status);
      assert.match(String(r.json().error), message);
      const ok = await call(server, ca, { body: JSON.stringify(podCreateReview(mcpPod())) });
      assert.equal(ok.status, 200);
      assert.equal((ok.json().response as { allowed: boolean }).allowed, true);
    });
  }

  it('survives clients that are not speaking TLS or hang up mid-request', async () => {
    await new Promise<void>((resolve) => {
      const s = netConnect(server.port, '127.0.0.1', () => s.end('GET / HTTP/1.1\r\n\r\n'));
      s.on('error', () => resolve());
      s.on('close', () => resolve());
    });
    await new Promise<void>((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', port: server.port, ca, servername: SERVICE_NAME }, () => {
        s.write('POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"apiVersion"');
        s.destroy();
        resolve();
      });
      s.on('error', () => resolve());
    });
    assert.ok(logs.some((e) => e.msg === 'TLS handshake failed'));
    const r = await call(server, ca, { method: 'GET', path: '/healthz' });
    assert.equal(r.status, 200);
  });

  it('serves a rotated certificate without a restart, and keeps the old one if the new pair is broken', async () => {
    const before = await servedCertificate(server, ca);
    makeCerts(join(dir, 'next'));
    // A key that does not match the certificate: refused, the old pair keeps serving.
    copyFileSync(join(dir, 'next', 'tls.crt'), join(dir, 'live', 'tls.crt'));
    assert.equal(server.reloadCertificates(), false);
    assert.equal((await servedCertificate(server, ca)).fingerprint256, before.fingerprint256);
    copyFileSync(join(dir, 'next', 'tls.key'), join(dir, 'live', 'tls.key'));
    assert.equal(server.reloadCertificates(), true);
    const nextCa = readFileSync(join(dir, 'next', 'ca.crt'), 'utf8');
    const after = await servedCertificate(server, nextCa);
    assert.notEqual(after.fingerprint256, before.fingerprint256);
    assert.equal(after.fingerprint256, new X509Certificate(readFileSync(join(dir, 'next', 'tls.crt'))).fingerprint256);
    ca = nextCa;
    const r = await call(server, ca, { body: JSON.stringify(podCreateReview(mcpPod())) });
    assert.equal(r.status, 200);
  });
});

describe('k8s/webhook failure policy (integration)', function () {
  this.timeout(30000);
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-webhook-fp-'));
    makeCerts(dir);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const [policy, allowed] of [['Fail', false], ['Ignore', true]] as const) {
    it(`with failure policy ${policy} an internal error ${allowed ? 'admits the pod unchanged, with a warning' : 'refuses the pod'}`, async () => {
      // A fault of the injector's own, not of the pod (a malformed pod is denied under either
      // policy): reading its settings throws.
      const inject = Object.defineProperty({}, 'envoyImage', { enumerable: true, get() { throw new Error('boom'); } });
      const server = await WebhookServer.start({ certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), host: '127.0.0.1', port: 0, failurePolicy: policy, inject, log: () => undefined });
      try {
        const pod = mcpPod();
        const r = await call(server, readFileSync(join(dir, 'ca.crt'), 'utf8'), { body: JSON.stringify(podCreateReview(pod)) });
        assert.equal(r.status, 200);
        const response = r.json().response as { allowed: boolean; patch?: string; warnings?: string[]; status?: { code: number } };
        assert.equal(response.allowed, allowed);
        assert.equal(response.patch, undefined);
        if (allowed) assert.match(response.warnings![0]!, /WITHOUT sidecars/);
        else assert.equal(response.status!.code, 500);
      } finally {
        await server.close();
      }
    });
  }
});
