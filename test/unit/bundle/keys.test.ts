import { strict as assert } from 'node:assert';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  generateSigningKeyPair, loadSigningKey, loadVerificationKeys, signingKeyFromText, verificationKeysFromText,
} from '../../../src/bundle/keys.js';
import { signBundle } from '../../../src/bundle/sign.js';
import { verifyBundle } from '../../../src/bundle/verify.js';
import { sampleBundle } from './fixtures.js';

describe('bundle signing keys', () => {
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'tollgate-keys-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const alg of ['EdDSA', 'ES256'] as const) {
    it(`generates a ${alg} pair whose halves agree on the key id and verify each other`, async () => {
      const pair = await generateSigningKeyPair(alg);
      writeFileSync(join(dir, `${alg}.key`), pair.privatePem);
      writeFileSync(join(dir, `${alg}.pub`), pair.publicPem);
      const signing = await loadSigningKey(join(dir, `${alg}.key`));
      const [verification] = await loadVerificationKeys(join(dir, `${alg}.pub`));
      assert.equal(signing.alg, alg);
      assert.equal(signing.kid, pair.kid);
      assert.equal(verification!.kid, pair.kid);
      await verifyBundle(await signBundle(sampleBundle(), signing), { keys: [verification!] });
    });
  }

  it('reads JWK and JWK sets, keeping their kid, and never keeps private members for verification', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'cp-2025', alg: 'ES256' };
    const signing = await signingKeyFromText(JSON.stringify(jwk), 'k.json');
    assert.equal(signing.kid, 'cp-2025');
    const keys = await verificationKeysFromText(JSON.stringify({ keys: [jwk, { ...publicKey.export({ format: 'jwk' }), kid: 'other' }] }), 'jwks.json');
    assert.deepEqual(keys.map((k) => [k.kid, k.alg, k.key.type]), [['cp-2025', 'ES256', 'public'], ['other', 'ES256', 'public']]);
  });

  it('refuses weak, unsupported or mismatched keys with a reason', async () => {
    const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    await assert.rejects(signingKeyFromText(rsa1024, 'weak.pem'), /weak\.pem: RSA key of 1024 bits is too short/);
    const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    await assert.rejects(signingKeyFromText(p384, 'p384.pem'), /ES256 needs P-256/);
    const ed = generateKeyPairSync('ed25519');
    await assert.rejects(signingKeyFromText(ed.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 'ed.pem', { alg: 'RS256' }), /--alg RS256 does not match the key, which is a EdDSA key/);
    await assert.rejects(signingKeyFromText(ed.publicKey.export({ type: 'spki', format: 'pem' }).toString(), 'pub.pem'), /pub\.pem: not a private key/);
    await assert.rejects(signingKeyFromText('hello', 'x'), /x: not a PEM key or a JWK/);
    await assert.rejects(loadSigningKey(join(dir, 'missing.pem')), /cannot read signing key .*missing\.pem/);
  });
});
