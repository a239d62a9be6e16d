import { createPrivateKey, createPublicKey, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { calculateJwkThumbprint } from 'jose';
import { isObject } from '../util/object.js';

/** JWS algorithms for bundle signatures. All three are ones OPA can verify too. */
export type SigningAlg = 'RS256' | 'ES256' | 'EdDSA';
export const SIGNING_ALGS: readonly SigningAlg[] = ['RS256', 'ES256', 'EdDSA'];

export function isSigningAlg(s: unknown): s is SigningAlg {
  return typeof s === 'string' && (SIGNING_ALGS as readonly string[]).includes(s);
}

/** A key with the algorithm it is used with and its id. */
export interface BundleKey {
  alg: SigningAlg;
  /** Written as `kid` in the JWT header and `keyid` in the payload. */
  kid: string;
  key: KeyObject;
}

/** A private key ready to sign bundles. */
export type SigningKey = BundleKey;
/** A public key a bundle may be signed with. */
export type VerificationKey = BundleKey;

/** The algorithm a key can sign with, from its type; a JWK's own `alg` must agree. */
export function algForKey(key: KeyObject, source = 'key'): SigningAlg {
  switch (key.asymmetricKeyType) {
    case 'rsa': {
      const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
      if (bits < 2048) throw new Error(`${source}: RSA key of ${bits} bits is too short; use 2048 bits or more`);
      return 'RS256';
    }
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve !== 'prime256v1') throw new Error(`${source}: EC key on curve ${curve ?? 'unknown'}; ES256 needs P-256 (prime256v1)`);
      return 'ES256';
    }
    case 'ed25519':
      return 'EdDSA';
    default:
      throw new Error(`${source}: unsupported key type ${key.asymmetricKeyType ?? key.type}; use an RSA, EC P-256 or Ed25519 key`);
  }
}

/**
 * Key id derived from the public key (RFC 7638 JWK thumbprint), so the control plane and every
 * authz instance agree on it without configuring names.
 */
export async function keyIdOf(key: KeyObject): Promise<string> {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return calculateJwkThumbprint(pub.export({ format: 'jwk' }), 'sha256');
}

interface JwkLike { kty?: unknown; kid?: unknown; alg?: unknown; d?: unknown; keys?: unknown }

/** Parses a key file's text: PEM (PKCS#8 / SPKI / PKCS#1 / SEC1 / certificate) or JSON JWK / JWKS. */
function parseKeyText(text: string, source: string): Array<{ jwk: JwkLike | null; pem: string | null }> {
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    let doc: unknown;
    try {
      doc = JSON.parse(trimmed);
    } catch (e) {
      throw new Error(`${source}: not valid JSON: ${(e as Error).message}`);
    }
    if (!isObject(doc)) throw new Error(`${source}: expected a JWK or a JWK set`);
    if (Array.isArray(doc.keys)) return doc.keys.map((k) => {
      if (!isObject(k)) throw new Error(`${source}: every entry of "keys" must be a JWK object`);
      return { jwk: k, pem: null };
    });
    return [{ jwk: doc, pem: null }];
  }
  if (trimmed.includes('-----BEGIN')) return [{ jwk: null, pem: trimmed }];
  throw new Error(`${source}: not a PEM key or a JWK (expected "-----BEGIN ..." or "{")`);
}

async function finish(key: KeyObject, jwk: JwkLike | null, source: string, opts: { alg?: SigningAlg; kid?: string }): Promise<BundleKey> {
  const alg = algForKey(key, source);
  if (jwk && jwk.alg !== undefined && jwk.alg !== alg) throw new Error(`${source}: JWK says alg ${String(jwk.alg)} but the key is a ${alg} key`);
  if (opts.alg && opts.alg !== alg) throw new Error(`${source}: --alg ${opts.alg} does not match the key, which is a ${alg} key`);
  const kid = opts.kid ?? (jwk && typeof jwk.kid === 'string' && jwk.kid ? jwk.kid : await keyIdOf(key));
  return { alg, kid, key };
}

/** Loads a private signing key from a PEM or JWK file. The key id defaults to the JWK's kid, else the thumbprint. */
export async function loadSigningKey(file: string, opts: { alg?: SigningAlg; kid?: string } = {}): Promise<SigningKey> {
  const text = await readFile(file, 'utf8').catch((e: Error) => { throw new Error(`cannot read signing key ${file}: ${e.message}`); });
  return signingKeyFromText(text, file, opts);
}

export async function signingKeyFromText(text: string, source: string, opts: { alg?: SigningAlg; kid?: string } = {}): Promise<SigningKey> {
  const parsed = parseKeyText(text, source);
  if (parsed.length !== 1) throw new Error(`${source}: holds ${parsed.length} keys; a signing key file must hold exactly one`);
  const { jwk, pem } = parsed[0]!;
  let key: KeyObject;
  try {
    key = pem !== null ? createPrivateKey(pem) : createPrivateKey({ key: jwk as JsonWebKey, format: 'jwk' });
  } catch (e) {
    throw new Error(`${source}: not a private key (${(e as Error).message}); pass the private half to sign bundles`);
  }
  return finish(key, jwk, source, opts);
}

/**
 * Loads public keys for verification: a PEM public key or certificate (one key; kid = thumbprint
 * unless given), or a JWK / JWK set (kid from each key, else its thumbprint). A private key file is
 * accepted too and only its public half is kept.
 */
export async function loadVerificationKeys(file: string, opts: { kid?: string } = {}): Promise<VerificationKey[]> {
  const text = await readFile(file, 'utf8').catch((e: Error) => { throw new Error(`cannot read verification key ${file}: ${e.message}`); });
  return verificationKeysFromText(text, file, opts);
}

export async function verificationKeysFromText(text: string, source: string, opts: { kid?: string } = {}): Promise<VerificationKey[]> {
  const parsed = parseKeyText(text, source);
  if (opts.kid !== undefined && parsed.length !== 1) throw new Error(`${source}: a key id can only be given for a file with one key`);
  const out: VerificationKey[] = [];
  for (const { jwk, pem } of parsed) {
    let key: KeyObject;
    try {
      if (pem !== null) key = createPublicKey(pem);
      else {
        // Only the public members: createPublicKey would otherwise accept and keep `d`.
        const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = jwk as JsonWebKey;
        key = createPublicKey({ key: pub, format: 'jwk' });
      }
    } catch (e) {
      throw new Error(`${source}: not a usable public key: ${(e as Error).message}`);
    }
    out.push(await finish(key, jwk, source, opts.kid !== undefined ? { kid: opts.kid } : {}));
  }
  return out;
}

/** A fresh key pair as PEM text, for `tollgate controlplane keys`. */
export async function generateSigningKeyPair(alg: SigningAlg): Promise<{ privatePem: string; publicPem: string; kid: string }> {
  const pair =
    alg === 'RS256' ? generateKeyPairSync('rsa', { modulusLength: 3072 })
    : alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    : generateKeyPairSync('ed25519');
  return {
    privatePem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    kid: await keyIdOf(pair.publicKey),
  };
}
