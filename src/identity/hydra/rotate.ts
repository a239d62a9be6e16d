import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK } from 'jose';

/** Hydra's key set for JWT access tokens; it signs with the newest private key in it. */
export const ACCESS_TOKEN_KEY_SET = 'hydra.jwt.access-token';
/** A set Hydra publishes in its JWKS but never signs with: where the next key is announced. */
export const NEXT_KEY_SET = 'tollgate.next.access-token';

async function admin(adminUrl: string, method: 'PUT' | 'DELETE', path: string, body?: unknown): Promise<void> {
  const res = await fetch(`${adminUrl}${path}`, {
    method, redirect: 'error', signal: AbortSignal.timeout(10_000),
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`Hydra admin ${method} ${path}: HTTP ${res.status}: ${text.slice(0, 300)}`);
}

export interface NextKey {
  kid: string;
  /** The private JWK: handed to Hydra at activation, never written anywhere by us. */
  privateJwk: JWK;
}

/**
 * Step 1 of a rotation without a failed call: publish the next key's public half in Hydra's JWKS
 * while Hydra keeps signing with the current one. Verifiers pick it up on their next JWKS refresh
 * (identity.jwks_cache_max_age_sec), so when Hydra starts signing with it, every verifier already
 * knows its kid and none has to refetch on an unknown kid (which the refetch cooldown may refuse).
 */
export async function announceNextKey(adminUrl: string): Promise<NextKey> {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
  const kid = randomUUID();
  const meta = { kid, alg: 'RS256', use: 'sig' };
  await admin(adminUrl, 'PUT', `/admin/keys/${NEXT_KEY_SET}`, { keys: [{ ...(await exportJWK(publicKey)), ...meta }] });
  return { kid, privateJwk: { ...(await exportJWK(privateKey)), ...meta } };
}

/** Step 2, after at least one JWKS refresh interval: Hydra signs new tokens with the announced key. */
export async function activateKey(adminUrl: string, next: NextKey): Promise<void> {
  await admin(adminUrl, 'PUT', `/admin/keys/${ACCESS_TOKEN_KEY_SET}/${encodeURIComponent(next.kid)}`, next.privateJwk);
}

/** Step 3, once tokens signed by the old key have expired: drop it from the JWKS. */
export async function retireKey(adminUrl: string, kid: string): Promise<void> {
  await admin(adminUrl, 'DELETE', `/admin/keys/${ACCESS_TOKEN_KEY_SET}/${encodeURIComponent(kid)}`);
}
