import { strict as assert } from 'node:assert';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeProtectedHeader, exportPKCS8, generateKeyPair, jwtVerify, type CryptoKey } from 'jose';
import { UpstreamCredentialMinter, type UpstreamCredentialsConfig } from '../../../src/identity/upstream-credentials.js';
import type { Identity } from '../../../src/identity/types.js';

function caller(sub: string, agent: string | null = 'claude'): Identity {
  return { sub, iss: 'https://idp', aud: ['r'], team: 'payments', groups: [], roles: [], tenant: null, agent, scopes: [], delegation: [], expiresAt: 2e9, claims: {} };
}

describe('upstream credential minter', () => {
  let dir: string;
  let cfg: UpstreamCredentialsConfig;
  const keys: Array<{ publicKey: CryptoKey }> = [];
  let clock = 1_800_000_000_000;
  const now = (): number => clock;

  async function writeKey(path: string): Promise<CryptoKey> {
    const pair = await generateKeyPair('ES256', { extractable: true });
    // Written beside and renamed over, as a mounted secret is swapped.
    writeFileSync(`${path}.tmp`, await exportPKCS8(pair.privateKey));
    renameSync(`${path}.tmp`, path);
    keys.push(pair);
    return pair.publicKey;
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-minter-'));
    cfg = { keyFile: join(dir, 'k.pem'), alg: 'ES256', issuer: 'tollgate', audience: 'https://up/mcp', ttlSec: 300, renewBeforeSec: 60, cacheMaxEntries: 2 };
    await writeKey(cfg.keyFile);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const token = (h: string): string => h.replace(/^Bearer /, '');

  it('reuses a caller\'s credential until renew_before_sec before it expires, then mints a new one', async () => {
    const m = await UpstreamCredentialMinter.open(cfg, now);
    const a = await m.credentialFor(caller('alice'));
    clock += 239_000;
    assert.equal((await m.credentialFor(caller('alice'))).id, a.id);
    clock += 2_000;
    assert.notEqual((await m.credentialFor(caller('alice'))).id, a.id);
  });

  it('keeps at most cache_max_entries callers', async () => {
    const m = await UpstreamCredentialMinter.open(cfg, now);
    const a = await m.credentialFor(caller('a'));
    await m.credentialFor(caller('b'));
    await m.credentialFor(caller('c'));
    assert.notEqual((await m.credentialFor(caller('a'))).id, a.id, 'a was evicted');
  });

  it('rotates to a replaced key file without a failed signing; credentials already out keep their key', async () => {
    const m = await UpstreamCredentialMinter.open(cfg, now);
    const oldKid = m.kid;
    const before = await m.credentialFor(caller('alice'));
    const newPublic = await writeKey(cfg.keyFile);
    clock += 1_500;
    const after = await m.credentialFor(caller('bob'));
    assert.notEqual(m.kid, oldKid);
    assert.equal(decodeProtectedHeader(token(after.authorization)).kid, m.kid);
    await jwtVerify(token(after.authorization), newPublic, { audience: 'https://up/mcp', issuer: 'tollgate', currentDate: new Date(clock) });
    assert.equal((await m.credentialFor(caller('alice'))).id, before.id, 'alice keeps hers until renewal');
    assert.equal(decodeProtectedHeader(token(before.authorization)).kid, oldKid);
  });

  it('a half-written key file does not stop signing: the current key stays until a good file appears', async () => {
    const problems: string[] = [];
    const m = await UpstreamCredentialMinter.open(cfg, now, (p) => problems.push(p));
    const kid = m.kid;
    writeFileSync(cfg.keyFile, '-----BEGIN PRIVATE KEY-----\nMIG');
    clock += 1_500;
    const c = await m.credentialFor(caller('carol'));
    assert.equal(decodeProtectedHeader(token(c.authorization)).kid, kid);
    assert.match(problems.join('\n'), /keeping the current upstream signing key/);
    await writeKey(cfg.keyFile);
    clock += 1_500;
    await m.credentialFor(caller('dave'));
    assert.notEqual(m.kid, kid);
  });

  it('an unreadable key file at start is a clear error', async () => {
    await assert.rejects(UpstreamCredentialMinter.open({ ...cfg, keyFile: join(dir, 'missing.pem') }, now), /upstream_credentials\.key_file: .*ENOENT/);
  });
});
