import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { identityFromClaims } from './claims.js';
import { claimProfile } from './profiles.js';
import { TokenCache } from './token-cache.js';
import { AuthError, type Identity, type IdentityConfig, type IntrospectionConfig, type TokenVerifier } from './types.js';
import { MAX_TOKEN_LENGTH } from './bearer.js';
import type { FetchLike } from './issuer-keys.js';
import { isObject } from '../util/object.js';

export type { IntrospectionConfig };

const MAX_RESPONSE_BYTES = 64 * 1024;

/**
 * The claims an introspection answer stands for. Hydra returns session claims under `ext`; they are
 * lifted to the top without overriding the standard members.
 */
export function claimsFromIntrospection(answer: Record<string, unknown>, cfg: IdentityConfig): Record<string, unknown> {
  const ext = isObject(answer.ext) ? answer.ext : {};
  const { active: _active, ext: _ext, ...standard } = answer;
  const claims: Record<string, unknown> = { ...ext, ...standard };
  if (claims.iss === undefined) claims.iss = cfg.issuer;
  return claims;
}

/** Checks an introspection answer the way a JWT's claims are checked; returns the identity. */
export function identityFromIntrospection(answer: unknown, cfg: IdentityConfig, nowSec: number): Identity {
  if (!isObject(answer)) throw new AuthError('issuer_unavailable', 'introspection answer is not a JSON object');
  if (answer.active !== true) throw new AuthError('inactive_token', 'the authorization server says this token is not active (expired, revoked or unknown)');
  const claims = claimsFromIntrospection(answer, cfg);
  if (claims.iss !== cfg.issuer) throw new AuthError('wrong_issuer', `token issued by ${JSON.stringify(claims.iss)}, expected "${cfg.issuer}"`);
  if (typeof claims.exp !== 'number') throw new AuthError('invalid_claims', 'claim "exp" must be a number (seconds since epoch)');
  if (claims.exp + cfg.clockToleranceSec <= nowSec) throw new AuthError('expired', 'token has expired');
  const aud = typeof claims.aud === 'string' ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud : [];
  if (!aud.some((a) => typeof a === 'string' && cfg.audience.includes(a))) {
    throw new AuthError('wrong_audience', `token audience ${JSON.stringify(aud)} does not include ${cfg.audience.join(' or ')}`);
  }
  return identityFromClaims(claims, cfg.claims, claimProfile(cfg.profile ?? 'generic'));
}

/** Whether a token has the shape of a JWS (three base64url parts); opaque tokens go to introspection. */
export function looksLikeJwt(token: string): boolean {
  const parts = token.split('.');
  return parts.length === 3 && parts.every((p) => p.length > 0) && /^[A-Za-z0-9_-]+$/.test(parts[0]!) && /^[A-Za-z0-9_-]+$/.test(parts[1]!);
}

/** Opaque tokens, checked at the authorization server (RFC 7662) with a bounded cache. */
export class IntrospectingVerifier implements TokenVerifier {
  private readonly cache: TokenCache<Identity>;
  private readonly inflight = new Map<string, Promise<Identity>>();
  private readonly authorization: string | null;

  constructor(private readonly cfg: IdentityConfig, private readonly intro: IntrospectionConfig, private readonly opts: { fetch?: FetchLike; now?: () => number } = {}) {
    this.cache = new TokenCache(intro.cacheMaxEntries);
    if ((intro.clientId === undefined) !== (intro.clientSecretFile === undefined)) throw new Error('identity.introspection: client_id and client_secret_file go together');
    this.authorization = intro.clientId !== undefined
      ? `Basic ${Buffer.from(`${encodeURIComponent(intro.clientId)}:${encodeURIComponent(readSecret(intro.clientSecretFile!))}`).toString('base64')}`
      : null;
  }

  verify(token: string): Promise<Identity> {
    if (typeof token !== 'string' || token === '') return Promise.reject(new AuthError('missing_token', 'no bearer token'));
    if (token.length > MAX_TOKEN_LENGTH) return Promise.reject(new AuthError('malformed_token', `token longer than ${MAX_TOKEN_LENGTH} bytes`));
    // Keyed by digest: the cache never holds a usable token.
    const key = createHash('sha256').update(token).digest('base64url');
    const now = (this.opts.now ?? Date.now)();
    const hit = this.cache.get(key, now);
    if (hit !== undefined) return Promise.resolve(hit);
    let p = this.inflight.get(key);
    if (p === undefined) {
      p = this.introspect(token, key).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  private async introspect(token: string, key: string): Promise<Identity> {
    let answer: unknown;
    try {
      const res = await (this.opts.fetch ?? fetch)(this.intro.endpoint, {
        method: 'POST', redirect: 'error', signal: AbortSignal.timeout(this.intro.timeoutMs ?? 5000),
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...(this.authorization ? { authorization: this.authorization } : {}) },
        body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
      });
      const text = await res.text();
      if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
      if (text.length > MAX_RESPONSE_BYTES) throw new Error('answer too large');
      answer = JSON.parse(text);
    } catch (e) {
      throw new AuthError('issuer_unavailable', `token introspection at ${this.intro.endpoint} failed: ${(e as Error).message}`);
    }
    const now = (this.opts.now ?? Date.now)();
    const identity = Object.freeze(identityFromIntrospection(answer, this.cfg, Math.floor(now / 1000)));
    this.cache.set(key, identity, Math.min(identity.expiresAt * 1000, now + this.intro.cacheTtlSec * 1000), now);
    return identity;
  }
}

/** JWTs to the JWT verifier, everything else to introspection. */
export function routeByTokenShape(jwt: TokenVerifier, opaque: TokenVerifier): TokenVerifier {
  return { verify: (token) => (looksLikeJwt(token) ? jwt.verify(token) : opaque.verify(token)) };
}

function readSecret(path: string): string {
  let s: string;
  try { s = readFileSync(path, 'utf8').trim(); } catch (e) { throw new Error(`identity.introspection.client_secret_file: ${(e as Error).message}`); }
  if (s === '') throw new Error(`identity.introspection.client_secret_file ${path} is empty`);
  return s;
}
