import { SignJWT } from 'jose';
import type { BundleFiles } from './archive.js';
import { fileDigest, type DigestAlgorithm } from './digest.js';
import type { SigningKey } from './keys.js';

/** Where OPA looks for a bundle's signature. */
export const SIGNATURES_PATH = '/.signatures.json';

/** One entry of the signed file list. `name` has no leading slash, as `opa sign` writes it. */
export interface SignedFile {
  name: string;
  hash: string;
  algorithm: string;
}

/** The JWT payload of an OPA bundle signature. */
export interface SignaturePayload {
  files: SignedFile[];
  keyid?: string;
  scope?: string;
  iat?: number;
}

export interface SignOptions {
  /** Optional OPA signature scope; a verifier configured with a scope insists on it. */
  scope?: string;
  /** Seconds since the epoch for `iat`; defaults to now. */
  issuedAt?: number;
  algorithm?: DigestAlgorithm;
}

/** The payload listing every file except the signature itself, in a stable order. Pure. */
export function signaturePayload(files: BundleFiles, kid: string, opts: SignOptions = {}): SignaturePayload {
  const algorithm = opts.algorithm ?? 'SHA-256';
  const signed: SignedFile[] = [...files.keys()]
    .filter((p) => p !== SIGNATURES_PATH)
    .sort()
    .map((p) => ({ name: p.replace(/^\/+/, ''), hash: fileDigest(p, files.get(p)!, algorithm), algorithm }));
  const payload: SignaturePayload = { files: signed, keyid: kid };
  if (opts.scope !== undefined) payload.scope = opts.scope;
  payload.iat = opts.issuedAt ?? Math.floor(Date.now() / 1000);
  return payload;
}

/** The compact JWS for a bundle, in OPA's format. */
export async function signatureToken(files: BundleFiles, key: SigningKey, opts: SignOptions = {}): Promise<string> {
  const payload = signaturePayload(files, key.kid, opts);
  return new SignJWT({ ...payload })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
    .sign(key.key);
}

/**
 * Returns a copy of the bundle with `/.signatures.json` added (or replaced). Every other file is
 * covered, including `.manifest`, so the revision it carries is signed too.
 */
export async function signBundle(files: BundleFiles, key: SigningKey, opts: SignOptions = {}): Promise<BundleFiles> {
  const jwt = await signatureToken(files, key, opts);
  const out: BundleFiles = new Map([...files].filter(([p]) => p !== SIGNATURES_PATH));
  out.set(SIGNATURES_PATH, Buffer.from(JSON.stringify({ signatures: [jwt] }) + '\n'));
  return out;
}
