import { strict as assert } from 'node:assert';
import { mkdtemp, readFile, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeProtectedHeader, importJWK, jwtVerify } from 'jose';
import { activeKey, addKey, keyFile, loadKeyRing, loadOrCreateKeyRing, publicJwk } from '../../../src/identity/keystore.js';
import { mintDevToken } from '../../../src/identity/issuer.js';

describe('dev issuer key store', () => {
  let dir: string;
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'tollgate-keys-')); });
  afterEach(async () => { await rm(dir, { recursive: true, force: true }); });

  it('creates one private key with a kid, in a file only the owner can read', async () => {
    const { ring, created } = await loadOrCreateKeyRing(dir);
    assert.equal(created, true);
    assert.equal(ring.file, keyFile(dir));
    assert.equal((await stat(ring.file)).mode & 0o777, 0o600);
    const k = activeKey(ring);
    assert.equal(k.alg, 'ES256');
    assert.equal(typeof k.d, 'string');
    assert.match(k.kid, /^[A-Za-z0-9_-]{43}$/);
    const onDisk = JSON.parse(await readFile(ring.file, 'utf8')) as { keys: Array<{ kid: string }> };
    assert.deepEqual(onDisk.keys.map((x) => x.kid), [k.kid]);
  });

  it('loads the same key again rather than making a new one', async () => {
    const first = await loadOrCreateKeyRing(dir);
    const second = await loadOrCreateKeyRing(dir);
    assert.equal(second.created, false);
    assert.equal(activeKey(second.ring).kid, activeKey(first.ring).kid);
  });

  it('ends with a single key when several callers create it at once', async () => {
    const results = await Promise.all([1, 2, 3, 4].map(() => loadOrCreateKeyRing(dir)));
    const kids = new Set(results.map((r) => activeKey(r.ring).kid));
    assert.equal(kids.size, 1);
    assert.equal(results.filter((r) => r.created).length, 1);
    assert.equal((await loadKeyRing(dir))?.keys.length, 1);
  });

  it('adds keys on rotation, newest signing, all kept', async () => {
    const { ring } = await loadOrCreateKeyRing(dir);
    const rotated = await addKey(dir, 'RS256');
    assert.equal(rotated.keys.length, 2);
    assert.equal(rotated.keys[0]?.kid, activeKey(ring).kid);
    assert.equal(activeKey(rotated).alg, 'RS256');
    assert.deepEqual((await loadKeyRing(dir))?.keys.map((k) => k.kid), rotated.keys.map((k) => k.kid));
    assert.equal((await stat(rotated.file)).mode & 0o777, 0o600);
  });

  it('publishes no private members', async () => {
    for (const alg of ['ES256', 'RS256', 'EdDSA'] as const) {
      const k = activeKey(await addKey(dir, alg));
      const pub = publicJwk(k);
      for (const m of ['d', 'p', 'q', 'dp', 'dq', 'qi']) assert.equal(m in pub, false, `${alg} ${m}`);
      assert.equal(pub.kid, k.kid);
      assert.equal(pub.use, 'sig');
    }
  });

  it('explains a damaged key file instead of replacing it', async () => {
    await mkdir(join(dir, 'issuer'), { recursive: true });
    await writeFile(keyFile(dir), '{"keys": [{"kty": "EC"}]}');
    await assert.rejects(loadOrCreateKeyRing(dir), /not a private signing JWK.*delete/);
    await writeFile(keyFile(dir), 'garbage');
    await assert.rejects(loadOrCreateKeyRing(dir), /not JSON/);
  });

  it('mints a token without a server, verifiable with the stored key', async () => {
    const token = await mintDevToken(dir, 'http://127.0.0.1:5556', { sub: 'alice', team: 'payments', audience: 'http://r/mcp', ttlSec: 60 });
    const k = activeKey((await loadKeyRing(dir))!);
    assert.equal(decodeProtectedHeader(token).kid, k.kid);
    const { payload } = await jwtVerify(token, await importJWK(publicJwk(k), k.alg), { issuer: 'http://127.0.0.1:5556', audience: 'http://r/mcp' });
    assert.equal(payload.team, 'payments');
  });
});
