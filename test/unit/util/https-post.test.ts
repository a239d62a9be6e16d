import { strict as assert } from 'node:assert';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createCa, issueCertificate, type PemPair } from '../../../src/pki/ca.js';
import { apiServerReviewer, CertificateRefused } from '../../../src/controlplane/workload-certs.js';
import { postWithBearer } from '../../../src/util/https-post.js';

/** The one HTTPS POST the certificate request and the TokenReview share, against a local server. */
describe('postWithBearer', () => {
  let ca: PemPair;
  let server: Server;
  let url: string;
  const seen: Array<{ auth: string | undefined; type: string | undefined; body: string }> = [];
  /** What the server answers next: status and body, or 'hang' to never answer. */
  let next: { status: number; body: string } | 'hang' = { status: 200, body: '{}' };

  before(async () => {
    ca = await createCa('https-post test CA');
    const leaf = await issueCertificate(ca, { commonName: '127.0.0.1', ips: ['127.0.0.1'], usage: 'server' });
    server = createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => { body += c.toString('utf8'); });
      req.on('end', () => {
        seen.push({ auth: req.headers.authorization, type: req.headers['content-type'], body });
        if (next === 'hang') return;
        res.writeHead(next.status, { 'content-type': 'application/json' }).end(next.body);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/x`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('sends the JSON body with the bearer token and returns status and text, whatever the status', async () => {
    next = { status: 403, body: '{"denied":true}' };
    const r = await postWithBearer({ url, ca: ca.certPem, token: 't0k', body: '{"a":1}', timeoutMs: 2000 });
    assert.deepEqual(r, { status: 403, text: '{"denied":true}' });
    assert.deepEqual(seen.at(-1), { auth: 'Bearer t0k', type: 'application/json', body: '{"a":1}' });
  });

  it('rejects a server whose certificate does not chain to the CA given', async () => {
    const other = await createCa('another CA');
    await assert.rejects(postWithBearer({ url, ca: other.certPem, token: 't', body: '{}', timeoutMs: 2000 }), /certificate/i);
  });

  it('refuses an empty or blank CA before connecting: never the system\'s roots, the token is not sent', async () => {
    // Node's TLS reads ca: '' (or an empty Buffer) as "no CA" and would trust every public CA.
    const before = seen.length;
    for (const empty of ['', ' \n']) {
      await assert.rejects(postWithBearer({ url, ca: empty, token: 't0k', body: '{}', timeoutMs: 2000 }), /^CaPemError: the CA for https:\/\/127\.0\.0\.1:\d+\/x holds no PEM certificate/);
    }
    await assert.rejects(postWithBearer({ url, ca: ca.keyPem, token: 't0k', body: '{}', timeoutMs: 2000 }), /holds no PEM certificate/);
    assert.equal(seen.length, before, 'the server saw no request');
  });

  it('refuses an empty token instead of sending a bare "Bearer "', async () => {
    const before = seen.length;
    await assert.rejects(postWithBearer({ url, ca: ca.certPem, token: ' ', body: '{}', timeoutMs: 2000 }), /no bearer token to send to https:\/\/127\.0\.0\.1:\d+\/x \(it is empty\)/);
    assert.equal(seen.length, before);
  });

  it('the TokenReview client refuses an API server CA without a certificate, before connecting', async () => {
    const before = seen.length;
    const reviewer = apiServerReviewer({ server: url.replace(/\/x$/, ''), token: 'cp-token', ca: '' });
    await assert.rejects(reviewer.review('pod-token', 'tollgate'), (e: unknown) => e instanceof CertificateRefused && /^TokenReview: the CA for .* holds no PEM certificate/.test(e.message));
    assert.equal(seen.length, before);
  });

  it('gives up after the timeout instead of hanging', async () => {
    next = 'hang';
    const started = Date.now();
    await assert.rejects(postWithBearer({ url, ca: ca.certPem, token: 't', body: '{}', timeoutMs: 200 }), /no answer from https:\/\/127\.0\.0\.1:\d+\/x within 0\.2 s/);
    assert.ok(Date.now() - started < 2000);
  });

  it('the TokenReview client judges the API server\'s answers on top of it', async () => {
    const reviewer = apiServerReviewer({ server: url.replace(/\/x$/, ''), token: 'cp-token', ca: ca.certPem });
    next = { status: 201, body: JSON.stringify({ status: { authenticated: true, user: { username: 'system:serviceaccount:a:b' } } }) };
    assert.deepEqual(await reviewer.review('pod-token', 'tollgate'), { authenticated: true, user: { username: 'system:serviceaccount:a:b' } });
    const sent = JSON.parse(seen.at(-1)!.body) as { spec: unknown };
    assert.equal(seen.at(-1)!.auth, 'Bearer cp-token');
    assert.deepEqual(sent.spec, { token: 'pod-token', audiences: ['tollgate'] });
    next = { status: 403, body: 'forbidden' };
    await assert.rejects(reviewer.review('pod-token', 'tollgate'), (e: unknown) => e instanceof CertificateRefused && /^TokenReview failed: HTTP 403: forbidden$/.test(e.message));
    next = { status: 200, body: 'not json' };
    await assert.rejects(reviewer.review('pod-token', 'tollgate'), /TokenReview answer is not JSON/);
  });
});
