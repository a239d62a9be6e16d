import { strict as assert } from 'node:assert';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { LocalPki, meshServerCredentials, type CertFiles } from '../../../src/pki/index.js';
import { eventually } from '../xds/harness.js';

/** Serving certificates are renewed on disk (1-day certificates in a cluster); servers follow. */
describe('trust: mesh gRPC servers reload a renewed certificate without a restart', function () {
  this.timeout(30_000);

  it('serves the new pair to new connections, and keeps the last good pair while the files disagree', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-reload-'));
    const server = new grpc.Server();
    try {
      const pki = await LocalPki.open(join(dir, 'pki'));
      const req = { commonName: 'cp', uris: ['spiffe://tollgate.local/ns/tollgate-system/sa/tollgate-controlplane'], ips: ['127.0.0.1'], usage: 'server' as const };
      const live: CertFiles = await pki.issue('live', req);
      const client = await pki.issue('client', { commonName: 'c', uris: ['spiffe://tollgate.local/ns/default/sa/demo'], usage: 'client' });
      const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', meshServerCredentials(live, 100), (e, p) => (e ? rej(e) : res(p))));
      const served = (): Promise<string> => new Promise((resolve, reject) => {
        const s = connect({ host: '127.0.0.1', port, ca: readFileSync(live.ca), cert: readFileSync(client.cert), key: readFileSync(client.key), ALPNProtocols: ['h2'] }, () => {
          const serial = s.getPeerCertificate().serialNumber;
          s.destroy();
          resolve(serial);
        });
        s.on('error', reject);
      });
      const first = await served();
      const renewed = await pki.issue('renewed', req);
      // The certificate lands before its key: a mismatched pair is not loaded.
      copyFileSync(renewed.cert, live.cert);
      await new Promise((r) => setTimeout(r, 400));
      assert.equal(await served(), first, 'a certificate without its key is not served');
      copyFileSync(renewed.key, live.key);
      const next = await eventually('the renewed certificate to be served', async () => { const s = await served(); return s !== first ? s : undefined; }, 5000);
      assert.notEqual(next, first);
    } finally {
      server.forceShutdown();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
