import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';

/** Algorithms the dev issuer can sign with. */
export type SigningAlg = 'ES256' | 'RS256' | 'EdDSA';
export const SIGNING_ALGS: readonly SigningAlg[] = ['ES256', 'RS256', 'EdDSA'];

/** A private JWK as stored: always with `kid`, `alg` and `use: "sig"`. */
export interface StoredKey extends JWK {
  kid: string;
  alg: SigningAlg;
}

/** Keys oldest first; the last one signs, all of them are published. */
export interface KeyRing {
  keys: StoredKey[];
  file: string;
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** Where the dev issuer keeps its keys: `<stateDir>/issuer/signing-keys.json`. */
export function keyFile(stateDir: string): string {
  return join(stateDir, 'issuer', 'signing-keys.json');
}

export function activeKey(ring: KeyRing): StoredKey {
  const k = ring.keys[ring.keys.length - 1];
  if (!k) throw new Error(`${ring.file} holds no keys`);
  return k;
}

export function publicJwk(k: StoredKey): JWK {
  const pub: Record<string, unknown> = { ...k, use: 'sig' };
  for (const m of PRIVATE_MEMBERS) delete pub[m];
  return pub as JWK;
}

export function isSigningAlg(s: string): s is SigningAlg {
  return (SIGNING_ALGS as readonly string[]).includes(s);
}

export async function generateKey(alg: SigningAlg = 'ES256'): Promise<StoredKey> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
  const jwk = await exportJWK(privateKey);
  // RFC 7638 thumbprint: a kid that names the key itself, stable across restarts.
  const kid = await calculateJwkThumbprint(jwk);
  return { ...jwk, kid, alg, use: 'sig' };
}

export function signingKey(k: StoredKey): Promise<CryptoKey> {
  return importJWK(k, k.alg) as Promise<CryptoKey>;
}

function parseRing(text: string, file: string): KeyRing {
  const fix = `delete ${file} to start over with a new key`;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new Error(`${file} is not JSON; ${fix}`);
  }
  const keys = (doc as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0) throw new Error(`${file} has no "keys" list; ${fix}`);
  for (const k of keys as unknown[]) {
    const key = k as Partial<StoredKey> | null;
    if (typeof key !== 'object' || key === null || typeof key.kid !== 'string' || typeof key.alg !== 'string' || !isSigningAlg(key.alg) || typeof key.d !== 'string') {
      throw new Error(`${file} holds an entry that is not a private signing JWK with kid and alg (${SIGNING_ALGS.join(', ')}); ${fix}`);
    }
  }
  return { keys: keys as StoredKey[], file };
}

export async function loadKeyRing(stateDir: string): Promise<KeyRing | null> {
  const file = keyFile(stateDir);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  return parseRing(text, file);
}

async function writeTemp(file: string, keys: StoredKey[]): Promise<string> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, JSON.stringify({ keys }, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
  // The umask may have narrowed the mode further but never widened it; make it exact anyway.
  await chmod(tmp, 0o600);
  return tmp;
}

/**
 * The key ring in stateDir, created with one new key when there is none. Creation is atomic and
 * exclusive (link of a complete file), so `tollgate token` and `tollgate up` racing end up with
 * the same key.
 */
export async function loadOrCreateKeyRing(stateDir: string, alg: SigningAlg = 'ES256'): Promise<{ ring: KeyRing; created: boolean }> {
  const existing = await loadKeyRing(stateDir);
  if (existing) return { ring: existing, created: false };
  const file = keyFile(stateDir);
  const key = await generateKey(alg);
  const tmp = await writeTemp(file, [key]);
  try {
    await link(tmp, file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    const winner = await loadKeyRing(stateDir);
    if (winner) return { ring: winner, created: false };
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  return { ring: { keys: [key], file }, created: true };
}

/** Adds a new signing key; earlier keys stay published so tokens they signed keep verifying. */
export async function addKey(stateDir: string, alg: SigningAlg = 'ES256'): Promise<KeyRing> {
  const { ring } = await loadOrCreateKeyRing(stateDir, alg);
  const keys = [...ring.keys, await generateKey(alg)];
  const tmp = await writeTemp(ring.file, keys);
  await rename(tmp, ring.file);
  return { keys, file: ring.file };
}
