import { createHash, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, CompactSign, compactVerify } from 'jose';

/**
 * Registry signatures: detached compact JWS (RFC 7515 appendix F) with EdDSA over the exact bytes
 * of a file, `kid` the RFC 7638 thumbprint of the public key.
 */

export interface PinnedKey { kid: string; key: KeyObject }

export async function keyId(key: KeyObject): Promise<string> {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return calculateJwkThumbprint(pub.export({ format: 'jwk' }), 'sha256');
}

export function newKeyPair(): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privatePem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), publicPem: publicKey.export({ format: 'pem', type: 'spki' }).toString() };
}

export async function signDetached(bytes: Uint8Array, privateKey: KeyObject): Promise<string> {
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error('registry keys are Ed25519 (tollgate registry keygen makes one)');
  const jws = await new CompactSign(bytes).setProtectedHeader({ alg: 'EdDSA', kid: await keyId(privateKey) }).sign(privateKey);
  const [h, , s] = jws.split('.');
  return `${h}..${s}`;
}

export type SignatureCheck = { ok: true; kid: string } | { ok: false; reason: string };

/** Valid only if made over exactly these bytes by one of the pinned keys. */
export async function verifyDetached(bytes: Uint8Array, detached: string, keys: PinnedKey[]): Promise<SignatureCheck> {
  const parts = detached.trim().split('.');
  if (parts.length !== 3 || parts[1] !== '') return { ok: false, reason: 'not a detached JWS' };
  let header: { alg?: unknown; kid?: unknown };
  try { header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8')) as typeof header; } catch { return { ok: false, reason: 'unreadable JWS header' }; }
  if (header.alg !== 'EdDSA') return { ok: false, reason: `algorithm ${String(header.alg)} is not accepted (EdDSA only)` };
  const key = keys.find((k) => k.kid === header.kid);
  if (!key) return { ok: false, reason: `signed by key ${String(header.kid)}, which is not pinned` };
  try {
    await compactVerify(`${parts[0]}.${Buffer.from(bytes).toString('base64url')}.${parts[2]}`, key.key, { algorithms: ['EdDSA'] });
    return { ok: true, kid: key.kid };
  } catch {
    return { ok: false, reason: 'signature does not match the content (altered or signed by another key)' };
  }
}

export const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
