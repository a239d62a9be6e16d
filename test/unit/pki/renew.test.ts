import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCa, issueCertificate } from '../../../src/pki/ca.js';
import { currentExpiry, keepRenewing, renewDelayMs, retryDelayMs } from '../../../src/pki/renew.js';

describe('workload certificate renewal timing', () => {
  it('renews at half the remaining lifetime, at once when expired, never in a tight loop', () => {
    const now = 1_000_000;
    assert.equal(renewDelayMs(now + 86_400_000, now), 43_200_000);
    assert.equal(renewDelayMs(now + 8000, now), 4000);
    assert.equal(renewDelayMs(now + 1500, now), 1000, 'at least 1 s');
    assert.equal(renewDelayMs(now, now), 0);
    assert.equal(renewDelayMs(now - 5, now), 0);
  });

  it('retries a failed renewal sooner as the certificate runs out, between 1 s and 30 s', () => {
    const now = 0;
    assert.equal(retryDelayMs(86_400_000, now), 30_000);
    assert.equal(retryDelayMs(100_000, now), 10_000);
    assert.equal(retryDelayMs(5000, now), 1000);
    assert.equal(retryDelayMs(-1, now), 1000);
  });

  it('reads the expiry of the certificate in the directory, and null for none or garbage', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-renew-unit-'));
    try {
      assert.equal(currentExpiry(dir), null);
      writeFileSync(join(dir, 'tls.crt'), 'not a certificate');
      assert.equal(currentExpiry(dir), null);
      const ca = await createCa('t');
      const leaf = await issueCertificate(ca, { commonName: 'x', usage: 'client', days: 1 });
      writeFileSync(join(dir, 'tls.crt'), leaf.certPem);
      const left = currentExpiry(dir)! - Date.now();
      // Certificates carry whole seconds.
      assert.ok(left > 86_400_000 - 5000 && left <= 86_400_000 + 1000, `${left}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a renewer that cannot reach the control plane keeps trying and stops when told', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-renew-unit-'));
    writeFileSync(join(dir, 'token'), 't');
    const logs: string[] = [];
    const stop = new AbortController();
    const done = keepRenewing({ url: 'https://127.0.0.1:1/v1/certificates', ca: '', tokenFile: join(dir, 'token'), outDir: join(dir, 'out') }, { log: (m) => logs.push(m), signal: stop.signal });
    try {
      while (!logs.some((l) => l.startsWith('renewal failed'))) await new Promise((r) => setTimeout(r, 20));
      assert.match(logs[0]!, /renewal failed \(.*\); retrying in 5 s/);
      stop.abort();
      await done;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
