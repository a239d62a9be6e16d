import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { LocalPki, parseSpiffeId, parseSubjectAltName, spiffeId, uriSans } from '../../../src/pki/index.js';

describe('pki', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'tollgate-pki-')); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('SPIFFE IDs round-trip and reject anything ambiguous', () => {
    const id = spiffeId({ trustDomain: 'tollgate.local', namespace: 'payments', serviceAccount: 'mcp-db' });
    assert.equal(id, 'spiffe://tollgate.local/ns/payments/sa/mcp-db');
    assert.deepEqual(parseSpiffeId(id), { trustDomain: 'tollgate.local', namespace: 'payments', serviceAccount: 'mcp-db' });
    for (const bad of ['spiffe://t/ns/a/sa/b/extra', 'spiffe://t/ns/A/sa/b', 'spiffe://t/ns//sa/b', 'https://t/ns/a/sa/b', 'spiffe://t/ns/a%2f/sa/b']) {
      assert.equal(parseSpiffeId(bad), null, bad);
    }
    assert.throws(() => spiffeId({ trustDomain: 'x', namespace: 'a/b', serviceAccount: 'c' }), /namespace "a\/b" is not a valid name/);
  });

  it('parses Node subjectAltName text, quoted values included', () => {
    assert.deepEqual(parseSubjectAltName('DNS:localhost, URI:spiffe://d/ns/a/sa/b, IP Address:127.0.0.1'), [
      { type: 'DNS', value: 'localhost' }, { type: 'URI', value: 'spiffe://d/ns/a/sa/b' }, { type: 'IP Address', value: '127.0.0.1' },
    ]);
    assert.deepEqual(parseSubjectAltName('URI:"spiffe://d/ns/a,b"'), [{ type: 'URI', value: 'spiffe://d/ns/a,b' }]);
  });

  it('keeps one CA across opens and reissues only when needed', async () => {
    const a = await LocalPki.open(dir);
    const b = await LocalPki.open(dir);
    assert.equal(a.caPem, b.caPem);
    assert.equal(statSync(join(dir, 'ca.key')).mode & 0o777, 0o600);
    const req = { commonName: 'xds', dnsNames: ['localhost'], ips: ['127.0.0.1'], usage: 'server' as const };
    const f1 = await a.issue('xds-server', req);
    const pem1 = readFileSync(f1.cert, 'utf8');
    await b.issue('xds-server', req);
    assert.equal(readFileSync(f1.cert, 'utf8'), pem1, 'a current certificate is kept');
    await b.issue('xds-server', { ...req, dnsNames: ['other.example'] });
    assert.notEqual(readFileSync(f1.cert, 'utf8'), pem1, 'new names mean a new certificate');
    assert.ok(new X509Certificate(readFileSync(f1.cert)).checkIssued(new X509Certificate(a.caPem)));
    await assert.rejects(a.issue('../evil', req), /certificate name/);
  });

  it('certificates work for mutual TLS and carry the workload identity', async () => {
    const pki = await LocalPki.open(dir);
    const server = await pki.issue('server', { commonName: 'server', ips: ['127.0.0.1'], usage: 'server' });
    const id = spiffeId({ trustDomain: 'tollgate.local', namespace: 'default', serviceAccount: 'demo' });
    const client = await pki.issue('client', { commonName: 'demo', uris: [id], usage: 'client' });
    const stranger = await (await LocalPki.open(join(dir, 'other'))).issue('client', { commonName: 'x', uris: [id], usage: 'client' });
    const seen: string[][] = [];
    const srv = createServer({ cert: readFileSync(server.cert), key: readFileSync(server.key), ca: readFileSync(server.ca), requestCert: true, rejectUnauthorized: true }, (s: TLSSocket) => {
      seen.push(uriSans(s.getPeerX509Certificate()!.raw));
      s.end('hi');
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    const dial = (files: { cert: string; key: string }): Promise<string> => new Promise((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port, ca: readFileSync(server.ca), cert: readFileSync(files.cert), key: readFileSync(files.key) });
      let data = '';
      s.on('data', (d) => { data += String(d); });
      s.on('end', () => resolve(data));
      s.on('error', reject);
    });
    try {
      assert.equal(await dial(client), 'hi');
      assert.deepEqual(seen, [[id]]);
      // TLS 1.3 reports a refused client certificate after the handshake: an error or an empty stream.
      const refused = await dial(stranger).catch((e: Error) => `error: ${e.message}`);
      assert.notEqual(refused, 'hi', 'a certificate from another CA is refused');
      assert.equal(seen.length, 1);
    } finally {
      srv.close();
    }
  });
});
