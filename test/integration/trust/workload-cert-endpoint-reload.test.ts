import { strict as assert } from 'node:assert';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkloadCertServer } from '../../../src/controlplane/workload-certs.js';
import { LocalPki } from '../../../src/pki/index.js';

/** The serial of the certificate a fresh TLS connection to the endpoint is served. */
function servedSerial(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      const serial = s.getPeerCertificate().serialNumber;
      s.end();
      resolve(serial);
    });
    s.on('error', reject);
  });
}

/**
 * The certificate endpoint (`controlplane serve --workload-certs`) serves a renewed certificate to
 * new connections without a restart, as the xDS server does, and keeps the current one while the
 * files on disk are not a usable pair. (A real reviewer is not needed: no request is made.)
 */
describe('trust: the workload certificate endpoint reloads its serving certificate', () => {
  it('serves renewed files to new connections and keeps the last good pair while they disagree', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-cert-reload-'));
    const pki = await LocalPki.open(join(dir, 'pki'));
    const req = { uris: ['spiffe://tollgate.local/ns/tollgate-system/sa/tollgate-controlplane'], dnsNames: ['localhost'], usage: 'server' as const };
    const first = await pki.issue('a', { commonName: 'a', ...req });
    const second = await pki.issue('b', { commonName: 'b', ...req });
    const live = { cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key'), ca: pki.caFile };
    copyFileSync(first.cert, live.cert);
    copyFileSync(first.key, live.key);
    const logs: string[] = [];
    const server = await WorkloadCertServer.start({
      host: '127.0.0.1', port: 0, tls: live, pki, trustDomain: 'tollgate.local', reloadMs: 50, log: (m) => logs.push(m),
      reviewer: { review: () => Promise.reject(new Error('not called')) },
    });
    const until = async (what: string, f: () => Promise<boolean>): Promise<void> => {
      const deadline = Date.now() + 10_000;
      while (!(await f())) {
        if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const serial = (file: string): string => new X509Certificate(readFileSync(file)).serialNumber;
    try {
      const a = serial(first.cert);
      const b = serial(second.cert);
      assert.equal(await servedSerial(server.port, pki.caPem), a);
      // Renewed: the new pair is served to the next connection.
      copyFileSync(second.key, live.key);
      copyFileSync(second.cert, live.cert);
      await until('the renewed certificate to be served', async () => (await servedSerial(server.port, pki.caPem)) === b);
      assert.ok(logs.some((l) => /serving certificate reloaded/.test(l)));
      // A certificate without its key (half a renewal): the last good pair stays.
      copyFileSync(first.cert, live.cert);
      await until('the mismatch to be noticed', async () => logs.some((l) => /keeping the current serving certificate \(unusable/.test(l)));
      assert.equal(await servedSerial(server.port, pki.caPem), b);
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
