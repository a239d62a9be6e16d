import { strict as assert } from 'node:assert';
import { readBundle, writeBundle, type BundleFiles } from '../../../src/bundle/archive.js';
import { signBundle, SIGNATURES_PATH } from '../../../src/bundle/sign.js';
import { verifyBundle, BundleVerificationError } from '../../../src/bundle/verify.js';
import { withRevision } from '../../../src/bundle/manifest.js';
import type { SigningAlg } from '../../../src/bundle/keys.js';
import { keyPair, sampleBundle } from './fixtures.js';
import { SignJWT } from 'jose';

function payloadOf(files: BundleFiles): Record<string, unknown> {
  const jwt = (JSON.parse(files.get(SIGNATURES_PATH)!.toString()) as { signatures: string[] }).signatures[0]!;
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
}

async function rejects(files: BundleFiles, keys: Parameters<typeof verifyBundle>[1], pattern: RegExp): Promise<void> {
  await assert.rejects(verifyBundle(files, keys), (e: unknown) => {
    assert.ok(e instanceof BundleVerificationError, `expected BundleVerificationError, got ${String(e)}`);
    assert.match(e.message, pattern);
    return true;
  });
}

describe('bundle signing and verification', () => {
  for (const alg of ['RS256', 'ES256', 'EdDSA'] as SigningAlg[]) {
    it(`round-trips a ${alg} signature through the tarball`, async () => {
      const { signing, verification } = await keyPair(alg);
      const signed = await signBundle(sampleBundle(), signing);
      const back = await readBundle(await writeBundle(signed));
      const v = await verifyBundle(back, { keys: [verification] });
      assert.equal(v.kid, signing.kid);
      assert.deepEqual([...v.files.keys()].sort(), [...sampleBundle().keys()].sort());
      for (const [p, body] of sampleBundle()) assert.deepEqual(v.files.get(p), body);

      const jwt = (JSON.parse(back.get(SIGNATURES_PATH)!.toString()) as { signatures: string[] }).signatures[0]!;
      const header = JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString()) as Record<string, unknown>;
      assert.equal(header.alg, alg);
      assert.equal(header.kid, signing.kid);
      const payload = payloadOf(back);
      assert.equal(payload.keyid, signing.kid);
      // OPA's format: names without the leading slash, SHA-256 for every file but the signature.
      assert.deepEqual((payload.files as Array<{ name: string; algorithm: string }>).map((f) => [f.name, f.algorithm]), [
        ['.manifest', 'SHA-256'], ['data.json', 'SHA-256'], ['policies/authz.rego', 'SHA-256'], ['policy.wasm', 'SHA-256'],
      ]);
    });
  }

  it('accepts data.json reformatted without changing its meaning, as OPA does', async () => {
    const { signing, verification } = await keyPair('EdDSA');
    const signed = await signBundle(sampleBundle(), signing);
    signed.set('/data.json', Buffer.from('{"tools":{"a":"x<y","b":[1,2.50]}}'));
    await verifyBundle(signed, { keys: [verification] });
  });

  describe('refuses a tampered bundle with a precise message', () => {
    let signed: BundleFiles;
    let keys: Awaited<ReturnType<typeof keyPair>>;
    before(async () => {
      keys = await keyPair('ES256');
      signed = await signBundle(sampleBundle(), keys.signing);
    });
    const copy = (): BundleFiles => new Map(signed);

    it('file edited', async () => {
      const f = copy();
      f.set('/policy.wasm', Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x01]));
      await rejects(f, { keys: [keys.verification] }, /^\/policy\.wasm: SHA-256 digest mismatch \(signed [0-9a-f]{64}, bundle has [0-9a-f]{64}\): the file was changed after signing$/);
    });

    it('data changed in value', async () => {
      const f = copy();
      f.set('/data.json', Buffer.from('{"tools":{"a":"x<y","b":[1,2.5]}}'));
      await rejects(f, { keys: [keys.verification] }, /^\/data\.json: SHA-256 digest mismatch/);
    });

    it('manifest revision changed (a replayed bundle relabelled)', async () => {
      const f = withRevision(copy(), '99');
      await rejects(f, { keys: [keys.verification] }, /^\/\.manifest: SHA-256 digest mismatch/);
    });

    it('file added', async () => {
      const f = copy();
      f.set('/extra.rego', Buffer.from('package x\nallow := true\n'));
      await rejects(f, { keys: [keys.verification] }, /^\/extra\.rego is in the bundle but not covered by its signature \(file added\)$/);
    });

    it('file removed', async () => {
      const f = copy();
      f.delete('/data.json');
      await rejects(f, { keys: [keys.verification] }, /^\/data\.json is covered by the signature but missing from the bundle \(file removed\)$/);
    });

    it('several problems at once are all named', async () => {
      const f = copy();
      f.delete('/data.json');
      f.set('/extra.rego', Buffer.from('package x\n'));
      await rejects(f, { keys: [keys.verification] }, /\/extra\.rego is in the bundle.*; \/data\.json is covered by the signature/);
    });

    it('signed by a key that is not configured', async () => {
      const other = await keyPair('ES256');
      await rejects(copy(), { keys: [other.verification] }, new RegExp(`^bundle is signed with key id "${keys.signing.kid}", which is not a configured verification key \\(configured: ${other.signing.kid}\\)$`));
    });

    it('signed by another key claiming the configured key id', async () => {
      const other = await keyPair('ES256');
      const forged = await signBundle(sampleBundle(), { ...other.signing, kid: keys.signing.kid });
      await rejects(forged, { keys: [keys.verification] }, new RegExp(`^bundle signature does not verify with key "${keys.signing.kid}" \\(ES256\\): signature verification failed$`));
    });

    it('signature algorithm differs from the key', async () => {
      const ed = await keyPair('EdDSA');
      const f = await signBundle(sampleBundle(), { ...ed.signing, kid: keys.signing.kid });
      await rejects(f, { keys: [keys.verification] }, /^the signature uses alg EdDSA but key "[^"]+" is a ES256 key$/);
    });

    it('unsigned', async () => {
      await rejects(sampleBundle(), { keys: [keys.verification] }, /^bundle is not signed: \/\.signatures\.json is missing$/);
    });

    it('malformed .signatures.json', async () => {
      const cases: Array<[string, RegExp]> = [
        ['{"signatures": [', /^\/\.signatures\.json is not valid JSON: /],
        ['{"sigs": []}', /^\/\.signatures\.json must be \{"signatures": \["<JWT>"\]\}$/],
        ['{"signatures": []}', /^\/\.signatures\.json holds 0 signatures; exactly one is supported$/],
        ['{"signatures": ["a.b.c", "d.e.f"]}', /^\/\.signatures\.json holds 2 signatures; exactly one is supported$/],
        ['{"signatures": [42]}', /^\/\.signatures\.json: the signature is not a compact JWT$/],
        ['{"signatures": ["not.a.jwt"]}', /^\/\.signatures\.json: the signature is not a well-formed JWT: /],
      ];
      for (const [text, pattern] of cases) {
        const f = copy();
        f.set(SIGNATURES_PATH, Buffer.from(text));
        await rejects(f, { keys: [keys.verification] }, pattern);
      }
    });

    it('payload without a file list, or with a weak digest', async () => {
      const sign = (payload: Record<string, unknown>): Promise<string> =>
        new SignJWT(payload).setProtectedHeader({ alg: 'ES256', kid: keys.signing.kid }).sign(keys.signing.key);
      const f = copy();
      f.set(SIGNATURES_PATH, Buffer.from(JSON.stringify({ signatures: [await sign({ keyid: keys.signing.kid })] })));
      await rejects(f, { keys: [keys.verification] }, /^signature payload has no "files" list$/);
      const files = (payloadOf(signed).files as Array<Record<string, string>>).map((x) => (x.name === 'policy.wasm' ? { ...x, algorithm: 'MD5' } : x));
      f.set(SIGNATURES_PATH, Buffer.from(JSON.stringify({ signatures: [await sign({ files })] })));
      await rejects(f, { keys: [keys.verification] }, /^\/policy\.wasm: digest algorithm "MD5" is not accepted/);
    });

    it('scope differs from the configured one', async () => {
      await rejects(copy(), { keys: [keys.verification], scope: 'prod' }, /^bundle signature scope is unset, expected "prod"$/);
      const scoped = await signBundle(sampleBundle(), keys.signing, { scope: 'prod' });
      await verifyBundle(scoped, { keys: [keys.verification], scope: 'prod' });
    });

    it('no keys configured', async () => {
      await rejects(copy(), { keys: [] }, /^no verification keys are configured/);
    });
  });

  it('picks the key by id among several', async () => {
    const a = await keyPair('EdDSA');
    const b = await keyPair('RS256');
    const signed = await signBundle(sampleBundle(), b.signing);
    const v = await verifyBundle(signed, { keys: [a.verification, b.verification] });
    assert.equal(v.kid, b.signing.kid);
  });
});
