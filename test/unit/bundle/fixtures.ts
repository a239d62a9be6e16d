import { generateKeyPairSync } from 'node:crypto';
import type { BundleFiles } from '../../../src/bundle/archive.js';
import { keyIdOf, type SigningAlg, type SigningKey, type VerificationKey } from '../../../src/bundle/keys.js';
import { createPublicKey } from 'node:crypto';

/** A bundle shaped like `opa build -t wasm` output (the WASM bytes are only a header here). */
export function sampleBundle(): BundleFiles {
  return new Map([
    ['/.manifest', Buffer.from('{"revision":"","roots":[""],"wasm":[{"entrypoint":"tollgate/authz/decision","module":"/policy.wasm"}],"rego_version":1}')],
    ['/data.json', Buffer.from('{\n  "tools": {"b": [1, 2.50], "a": "x<y"}\n}\n')],
    ['/policies/authz.rego', Buffer.from('package tollgate.authz\n\ndefault allow := false\n')],
    ['/policy.wasm', Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00])],
  ]);
}

export async function keyPair(alg: SigningAlg): Promise<{ signing: SigningKey; verification: VerificationKey }> {
  const pair =
    alg === 'RS256' ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    : generateKeyPairSync('ed25519');
  const kid = await keyIdOf(pair.publicKey);
  return { signing: { alg, kid, key: pair.privateKey }, verification: { alg, kid, key: createPublicKey(pair.privateKey) } };
}
