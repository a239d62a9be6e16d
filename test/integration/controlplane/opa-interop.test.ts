import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { readBundle, type BundleFiles } from '../../../src/bundle/archive.js';
import { signBundle, SIGNATURES_PATH } from '../../../src/bundle/sign.js';
import { verifyBundle } from '../../../src/bundle/verify.js';
import { generateSigningKeyPair, signingKeyFromText, verificationKeysFromText, type SigningAlg } from '../../../src/bundle/keys.js';
import { toolPath } from '../../../src/util/tools.js';

const run = promisify(execFile);

/** A tarball with the absolute entry names `opa build` writes (OPA resolves wasm modules by them). */
async function opaStyleTarball(files: BundleFiles): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => { if (Buffer.isBuffer(c)) chunks.push(c); });
  const done = new Promise<void>((resolve, reject) => { pack.on('end', resolve); pack.on('error', reject); });
  for (const [name, body] of files) pack.entry({ name, size: body.length, mode: 0o644 }, body);
  pack.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}

async function opa(args: string[]): Promise<{ ok: boolean; out: string }> {
  try {
    const r = await run(toolPath('opa'), args);
    return { ok: true, out: r.stdout + r.stderr };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    return { ok: false, out: (err.stdout ?? '') + (err.stderr ?? err.message) };
  }
}

describe('bundle signatures interoperate with the real opa binary', function () {
  this.timeout(60000);
  let dir: string;
  let built: Buffer;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-opa-interop-'));
    const src = join(dir, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'authz.rego'), 'package tollgate.authz\n\ndefault allow := false\n\nallow if input.user in data.users\n\ndecision := {"allow": allow, "reasons": []}\n');
    // Structured data exercising OPA's canonical hashing: key order, number literals, escapes.
    writeFileSync(join(src, 'data.json'), '{"users": ["alice", "b\\u00f8b"], "z<&>": [1.50, 1E+3, 12345678901234567890123], "\\ud83d\\ude00": {"b": "\\u2028", "a": "\\t"}}');
    await run(toolPath('opa'), ['build', '-t', 'wasm', '-e', 'tollgate/authz/decision', '-r', '5', '-o', join(dir, 'built.tar.gz'), src]);
    built = readFileSync(join(dir, 'built.tar.gz'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const alg of ['RS256', 'ES256', 'EdDSA'] as SigningAlg[]) {
    it(`opa verifies a wasm bundle we signed with ${alg}, and refuses it once tampered`, async () => {
      const pair = await generateSigningKeyPair(alg);
      const pub = join(dir, `${alg}.pub.pem`);
      writeFileSync(pub, pair.publicPem);
      const signed = await signBundle(await readBundle(built), await signingKeyFromText(pair.privatePem, 'k'));
      const good = join(dir, `${alg}-signed.tar.gz`);
      writeFileSync(good, await opaStyleTarball(signed));
      const args = (file: string): string[] => ['build', '-b', file, '--verification-key', pub, '--verification-key-id', pair.kid, '--signing-alg', alg, '-o', join(dir, `${alg}-out.tar.gz`)];
      const ok = await opa(args(good));
      assert.ok(ok.ok, `opa refused our signature: ${ok.out}`);

      const tampered = new Map(signed);
      tampered.set('/data.json', Buffer.from('{"users": ["mallory"]}'));
      const bad = join(dir, `${alg}-tampered.tar.gz`);
      writeFileSync(bad, await opaStyleTarball(tampered));
      const refused = await opa(args(bad));
      assert.ok(!refused.ok, 'opa accepted a tampered bundle');
      assert.match(refused.out, /data\.json: digest mismatch/);
    });

    it(`we verify a bundle signed by opa sign with ${alg}`, async () => {
      const pair = await generateSigningKeyPair(alg);
      const keyFile = join(dir, `${alg}-opa.key.pem`);
      writeFileSync(keyFile, pair.privatePem);
      const out = join(dir, `${alg}-opa-sig`);
      mkdirSync(out);
      const r = await opa(['sign', '--signing-key', keyFile, '--signing-alg', alg, '--bundle', join(dir, 'built.tar.gz'), '-o', out]);
      assert.ok(r.ok, r.out);
      const files = await readBundle(built);
      files.set(SIGNATURES_PATH, readFileSync(join(out, '.signatures.json')));
      const keys = await verificationKeysFromText(pair.publicPem, 'pub');
      const v = await verifyBundle(files, { keys });
      assert.equal(v.files.size, files.size - 1);

      files.set('/policy.wasm', Buffer.concat([files.get('/policy.wasm')!, Buffer.from([0])]));
      await assert.rejects(verifyBundle(files, { keys }), /\/policy\.wasm: SHA-256 digest mismatch/);
    });
  }
});
