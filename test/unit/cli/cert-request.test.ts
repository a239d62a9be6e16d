import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { certCommand } from '../../../src/cli/cert.js';
import { UsageError } from '../../../src/cli/types.js';
import { createCa, issueCertificate, type PemPair } from '../../../src/pki/ca.js';
import { certificatesUrlProblem, requestWorkloadCertificate } from '../../../src/pki/request.js';
import { projectRoot } from '../../../src/util/tools.js';

const run = promisify(execFile);

/**
 * `tollgate cert request` sends the pod's token: it must go to no server but one the mesh CA given
 * vouches for. Everything wrong with the flags is refused before connecting, as a usage error.
 */
describe('tollgate cert request: flags checked before the token leaves', function () {
  this.timeout(30_000);
  let ca: PemPair;
  let server: Server;
  let url: string;
  let dir: string;
  /** TCP connections and requests (with their Authorization) the server saw. */
  let connections = 0;
  const requests: Array<string | undefined> = [];

  before(async () => {
    ca = await createCa('cert request test CA');
    const leaf = await issueCertificate(ca, { commonName: '127.0.0.1', ips: ['127.0.0.1'], usage: 'server' });
    server = createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
      requests.push(req.headers.authorization);
      req.resume();
      req.on('end', () => res.writeHead(403, { 'content-type': 'application/json' }).end('{"error":"test server refuses"}'));
    });
    server.on('connection', () => { connections++; });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/v1/certificates`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-cert-request-'));
    connections = 0;
    requests.length = 0;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const file = (name: string, text: string): string => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const request = (args: Record<string, string>): Promise<number> =>
    certCommand.run(['request', ...Object.entries(args).flatMap(([k, v]) => [`--${k}`, v])]);
  const usageError = (pattern: RegExp) => (e: unknown): boolean => {
    assert.ok(e instanceof UsageError, `a usage error (exit 2), got ${String(e)}`);
    assert.match(e.message, pattern);
    return true;
  };

  it('refuses an empty or blank --ca file, and one without a certificate, without connecting', async () => {
    const token = file('token', 'pod-token\n');
    for (const [name, text] of [['empty.crt', ''], ['blank.crt', '\n  \n'], ['key.pem', ca.keyPem]] as const) {
      const caFile = file(name, text);
      await assert.rejects(request({ url, ca: caFile, 'token-file': token, out: join(dir, 'out') }),
        usageError(new RegExp(`^--ca ${caFile.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} holds no PEM certificate`)));
    }
    assert.equal(connections, 0, 'no connection was made');
    assert.deepEqual(requests, []);
  });

  it('refuses an empty --token-file instead of sending "Bearer "', async () => {
    const caFile = file('ca.crt', ca.certPem);
    for (const text of ['', '\n \n']) {
      const token = file('token', text);
      await assert.rejects(request({ url, ca: caFile, 'token-file': token, out: join(dir, 'out') }), usageError(new RegExp(`^--token-file ${token} is empty$`)));
    }
    await assert.rejects(request({ url, ca: caFile, 'token-file': join(dir, 'missing'), out: join(dir, 'out') }), usageError(/^--token-file: ENOENT/));
    assert.equal(connections, 0);
  });

  it('refuses a --url that is not https:// as a usage error naming --url', async () => {
    const caFile = file('ca.crt', ca.certPem);
    const token = file('token', 'pod-token');
    await assert.rejects(request({ url: 'notaurl', ca: caFile, 'token-file': token, out: join(dir, 'out') }),
      usageError(/^--url must be an https:\/\/ URL such as https:\/\/HOST:PORT\/v1\/certificates: "notaurl" is not a URL$/));
    await assert.rejects(request({ url: url.replace('https:', 'http:'), ca: caFile, 'token-file': token, out: join(dir, 'out') }),
      usageError(/^--url must be an https:\/\/ URL .*: "http:\/\/127\.0\.0\.1:\d+\/v1\/certificates" uses http:\/\/, but the token is only sent over https:\/\/$/));
    assert.equal(certificatesUrlProblem(url), null);
    assert.equal(connections, 0);
  });

  it('with a good CA and token, sends the token and reports the control plane\'s refusal', async () => {
    const caFile = file('ca.crt', ca.certPem);
    const token = file('token', 'pod-token\n');
    await assert.rejects(request({ url, ca: caFile, 'token-file': token, out: join(dir, 'out') }),
      (e: unknown) => !(e instanceof UsageError) && /refused the certificate request \(HTTP 403\): test server refuses/.test((e as Error).message));
    assert.deepEqual(requests, ['Bearer pod-token']);
  });

  it('the library (and so --renew) refuses the same before connecting', async () => {
    const token = file('token', 'pod-token');
    const base = { url, ca: ca.certPem, tokenFile: token, outDir: join(dir, 'out') };
    await assert.rejects(requestWorkloadCertificate({ ...base, ca: '' }), /the mesh CA given holds no PEM certificate/);
    await assert.rejects(requestWorkloadCertificate({ ...base, tokenFile: file('empty-token', '') }), /token file .*empty-token is empty/);
    await assert.rejects(requestWorkloadCertificate({ ...base, url: 'http://127.0.0.1:1/v1/certificates' }), /uses http:\/\/, but the token is only sent over https:\/\//);
    assert.equal(connections, 0);
  });

  it('an empty --ca never falls back to the system CAs (even ones that trust the server)', async () => {
    // The server's CA is made a system CA of the child process: with the empty --ca read as
    // "no CA", the token went to it (the bug this guards against).
    const extra = file('system-ca.pem', ca.certPem);
    const empty = file('empty.crt', '');
    const token = file('token', 'pod-token');
    const r = await run(process.execPath, ['--import', 'tsx', join('src', 'cli', 'main.ts'), 'cert', 'request', '--url', url, '--ca', empty, '--token-file', token, '--out', join(dir, 'out')], {
      cwd: projectRoot(), env: { ...process.env, NODE_EXTRA_CA_CERTS: extra },
    }).then(() => ({ code: 0, stderr: '' }), (e: { code?: number; stderr?: string }) => ({ code: e.code, stderr: e.stderr ?? '' }));
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^tollgate cert: --ca .*empty\.crt holds no PEM certificate/);
    assert.deepEqual(requests, []);
    assert.equal(connections, 0);
  });
});
