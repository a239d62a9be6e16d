import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { canonicalize } from './canonical.js';

/**
 * The checkpoint signing key: a private key file (PKCS#8 PEM, or a private JWK as JSON). When the
 * file is missing an Ed25519 key is generated and written with mode 0600 (as a JWK if the name
 * ends in .json or .jwk, as PEM otherwise). The algorithm follows
 * the key: Ed25519 → EdDSA, P-256 → ES256, P-384 → ES384, RSA → RS256.
 */

export type CheckpointAlg = 'EdDSA' | 'ES256' | 'ES384' | 'RS256';

export interface PublicJwk extends JsonWebKey {
  kty: string;
  kid: string;
  alg: CheckpointAlg;
  use: 'sig';
}

export interface SigningKey {
  alg: CheckpointAlg;
  kid: string;
  privateKey: KeyObject;
  publicJwk: PublicJwk;
}

export class KeyFileError extends Error {
  constructor(path: string, problem: string) {
    super(`checkpoint signing key ${path}: ${problem}`);
    this.name = 'KeyFileError';
  }
}

function algOf(key: KeyObject, path: string): CheckpointAlg {
  switch (key.asymmetricKeyType) {
    case 'ed25519': return 'EdDSA';
    case 'rsa': return 'RS256';
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === 'prime256v1' || curve === 'P-256') return 'ES256';
      if (curve === 'secp384r1' || curve === 'P-384') return 'ES384';
      throw new KeyFileError(path, `EC curve ${curve} is not supported: use Ed25519 (default), P-256 or P-384`);
    }
    default:
      throw new KeyFileError(path, `${key.asymmetricKeyType} keys are not supported: use Ed25519 (default), P-256, P-384 or RSA`);
  }
}

const THUMBPRINT_MEMBERS: Record<string, string[]> = { OKP: ['crv', 'kty', 'x'], EC: ['crv', 'kty', 'x', 'y'], RSA: ['e', 'kty', 'n'] };

/** RFC 7638 JWK thumbprint (SHA-256, base64url): the key id checkpoints name. */
export function jwkThumbprint(jwk: JsonWebKey): string {
  const members = THUMBPRINT_MEMBERS[jwk.kty ?? ''];
  if (!members) throw new Error(`cannot compute a thumbprint for a JWK of kty ${jwk.kty}`);
  const required: Record<string, unknown> = {};
  for (const m of members) required[m] = (jwk as Record<string, unknown>)[m];
  return createHash('sha256').update(canonicalize(required)).digest('base64url');
}

export function signingKeyFrom(privateKey: KeyObject, path = '(in memory)'): SigningKey {
  const alg = algOf(privateKey, path);
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' });
  const kid = jwkThumbprint(jwk);
  return { alg, kid, privateKey, publicJwk: { ...jwk, kty: jwk.kty ?? '', kid, alg, use: 'sig' } };
}

function parseKeyFile(text: string, path: string): KeyObject {
  try {
    if (text.trimStart().startsWith('{')) {
      const jwk = JSON.parse(text) as JsonWebKey;
      if (!jwk.d) throw new Error('the JWK has no private part ("d")');
      return createPrivateKey({ key: jwk, format: 'jwk' });
    }
    return createPrivateKey(text);
  } catch (e) {
    throw new KeyFileError(path, `not a private key in PKCS#8 PEM or JWK form (${(e as Error).message})`);
  }
}

/**
 * Loads the key, or creates an Ed25519 key at `path` (0600, parent directories 0700). `warn` is
 * told when an existing key file is readable by others.
 */
export function loadOrCreateSigningKey(path: string, warn: (msg: string) => void = () => undefined): SigningKey {
  let text: string | null = null;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new KeyFileError(path, (e as Error).message);
  }
  if (text === null) {
    const { privateKey } = generateKeyPairSync('ed25519');
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // The file's name says the form: *.json / *.jwk get a private JWK, anything else PKCS#8 PEM.
    const text = /\.(json|jwk)$/i.test(path)
      ? JSON.stringify(privateKey.export({ format: 'jwk' }), null, 2) + '\n'
      : privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    try {
      writeFileSync(path, text, { mode: 0o600, flag: 'wx' });
    } catch (e) {
      // Another process created it first: use theirs, so both sign with the same key.
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return loadOrCreateSigningKey(path, warn);
      throw new KeyFileError(path, `cannot write a new key: ${(e as Error).message}`);
    }
    chmodSync(path, 0o600);
    return signingKeyFrom(privateKey, path);
  }
  const mode = statSync(path).mode & 0o777;
  if (mode & 0o077) warn(`checkpoint signing key ${path} is readable by other users (mode ${mode.toString(8)}): chmod 600 it`);
  return signingKeyFrom(parseKeyFile(text, path), path);
}

/** Writes the public key as a JWK Set for verifiers (`tollgate logs verify --key`). */
export function writePublicJwks(path: string, key: SigningKey): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify({ keys: [key.publicJwk] }, null, 2) + '\n', { mode: 0o644 });
}

/**
 * A verifier's key file → public JWKs: a JWK Set, a single JWK, or a PEM key (public or private;
 * only its public part is kept).
 */
export function publicJwksFromFile(path: string): PublicJwk[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new KeyFileError(path, `cannot read it: ${(e as Error).message}`);
  }
  if (text.trimStart().startsWith('{')) {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw new KeyFileError(path, `not valid JSON: ${(e as Error).message}`);
    }
    const list = typeof doc === 'object' && doc !== null && Array.isArray((doc as { keys?: unknown }).keys) ? (doc as { keys: unknown[] }).keys : [doc];
    return list.map((k) => {
      try {
        const pub = createPublicKey({ key: k as JsonWebKey, format: 'jwk' });
        const jwk = k as Partial<PublicJwk>;
        const derived = signingKeyFromPublic(pub, path);
        return { ...derived, kid: jwk.kid ?? derived.kid };
      } catch (e) {
        if (e instanceof KeyFileError) throw e;
        throw new KeyFileError(path, `a key in it is not a usable JWK (${(e as Error).message})`);
      }
    });
  }
  try {
    return [signingKeyFromPublic(createPublicKey(text), path)];
  } catch (e) {
    if (e instanceof KeyFileError) throw e;
    throw new KeyFileError(path, `not a JWK, JWK Set or PEM key (${(e as Error).message})`);
  }
}

function signingKeyFromPublic(pub: KeyObject, path: string): PublicJwk {
  const alg = algOf(pub, path);
  const jwk = pub.export({ format: 'jwk' });
  return { ...jwk, kty: jwk.kty ?? '', kid: jwkThumbprint(jwk), alg, use: 'sig' };
}
