import { decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWTVerifyOptions } from 'jose';
import { MAX_TOKEN_LENGTH } from './bearer.js';
import { identityFromClaims } from './claims.js';
import { claimProfile, PROFILES } from './profiles.js';
import { IntrospectingVerifier, routeByTokenShape } from './introspection.js';
import { IssuerKeys, type FetchLike } from './issuer-keys.js';
import { authErrorFrom, quote } from './jose-errors.js';
import { TokenCache } from './token-cache.js';
import { AuthError, type Identity, type IdentityConfig, type TokenVerifier } from './types.js';

export interface VerifierOptions {
  /** HTTP client for discovery and JWKS (default: global fetch). */
  fetch?: FetchLike;
  /** Verified tokens kept until they expire (default 10,000; 0 turns the cache off). */
  cacheSize?: number;
  /** Clock in milliseconds since epoch (default Date.now): token times, cache expiry, retry backoff. */
  now?: () => number;
  /** Timeout of each request to the issuer, ms (default 5000). */
  timeoutMs?: number;
  /** Wait after a failed discovery or JWKS fetch, doubling up to maxMs (default 1000 → 60000). */
  retryBackoff?: { initialMs: number; maxMs: number };
}

/** Asymmetric JWS algorithms only: a shared secret never comes from a JWKS, and "none" never verifies. */
export const SUPPORTED_ALGORITHMS: readonly string[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

/** Throws on a configuration that could never verify a token safely. */
export function checkIdentityConfig(cfg: IdentityConfig): void {
  if (!cfg.issuer) throw new Error('identity issuer must be set');
  if (cfg.audience.length === 0 || cfg.audience.some((a) => typeof a !== 'string' || a === '')) {
    throw new Error('identity audience must list at least one non-empty audience (the governed resource URL)');
  }
  if (cfg.profile !== undefined && !PROFILES.includes(cfg.profile)) throw new Error(`identity profile ${JSON.stringify(cfg.profile)} is not known; use one of ${PROFILES.join(', ')}`);
  if (cfg.algorithms.length === 0) throw new Error('identity algorithms must list at least one algorithm');
  for (const a of cfg.algorithms) {
    if (!SUPPORTED_ALGORITHMS.includes(a)) {
      throw new Error(`identity algorithm ${JSON.stringify(a)} is not accepted; use some of ${SUPPORTED_ALGORITHMS.join(', ')}`);
    }
  }
  if (!(Number.isFinite(cfg.clockToleranceSec) && cfg.clockToleranceSec >= 0)) throw new Error('identity clockToleranceSec must be a non-negative number');
  for (const [k, v] of [['jwksCooldownSec', cfg.jwksCooldownSec], ['jwksCacheMaxAgeSec', cfg.jwksCacheMaxAgeSec]] as const) {
    if (v !== undefined && !(Number.isFinite(v) && v >= 0)) throw new Error(`identity ${k} must be a non-negative number`);
  }
}

/** Cached identities are shared by every request carrying the token, so nobody may change them. */
function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const child of Object.values(v)) deepFreeze(child);
  }
  return v;
}

class JwtVerifier implements TokenVerifier {
  private readonly cache: TokenCache<Identity>;
  private readonly inflight = new Map<string, Promise<Identity>>();
  private readonly keys: IssuerKeys;
  private readonly algorithms: Set<string>;
  private readonly now: () => number;
  private readonly expected: { issuer: string; audience: string[] };

  constructor(private readonly cfg: IdentityConfig, opts: VerifierOptions) {
    this.now = opts.now ?? Date.now;
    this.cache = new TokenCache(opts.cacheSize ?? 10_000);
    this.algorithms = new Set(cfg.algorithms);
    this.expected = { issuer: cfg.issuer, audience: [...cfg.audience] };
    this.keys = new IssuerKeys(cfg, {
      fetch: opts.fetch ?? fetch,
      now: this.now,
      timeoutMs: opts.timeoutMs ?? 5000,
      backoff: opts.retryBackoff ?? { initialMs: 1000, maxMs: 60_000 },
    });
  }

  verify(token: string): Promise<Identity> {
    const hit = this.cache.get(token, this.now());
    if (hit !== undefined) return Promise.resolve(hit);
    // Concurrent requests with the same new token share one verification.
    let p = this.inflight.get(token);
    if (p === undefined) {
      p = this.verifyUncached(token).finally(() => this.inflight.delete(token));
      this.inflight.set(token, p);
    }
    return p;
  }

  private async verifyUncached(token: string): Promise<Identity> {
    this.precheck(token);
    const nowMs = this.now();
    const options: JWTVerifyOptions = {
      issuer: this.cfg.issuer,
      audience: this.expected.audience,
      algorithms: this.cfg.algorithms,
      clockTolerance: this.cfg.clockToleranceSec,
      requiredClaims: ['exp', 'sub'],
      currentDate: new Date(nowMs),
    };
    let payload: JWTPayload;
    try {
      payload = (await jwtVerify(token, this.keys.resolve, options)).payload;
    } catch (e) {
      if (!(e instanceof errors.JWKSMultipleMatchingKeys)) throw authErrorFrom(e, this.expected);
      payload = await this.verifyWithEach(token, e, options);
    }
    const identity = deepFreeze(identityFromClaims(payload, this.cfg.claims, claimProfile(this.cfg.profile ?? 'generic')));
    // Never honoured past exp from the cache; within the clock tolerance a token is re-verified.
    this.cache.set(token, identity, identity.expiresAt * 1000, nowMs);
    return identity;
  }

  /**
   * Cheap refusals before any key lookup. The unverified issuer only classifies a refusal: a token
   * naming another issuer would otherwise show up as an unknown key and cost us a JWKS refetch.
   */
  private precheck(token: string): void {
    if (typeof token !== 'string' || token === '') throw new AuthError('missing_token', 'no bearer token');
    if (token.length > MAX_TOKEN_LENGTH) throw new AuthError('malformed_token', `token longer than ${MAX_TOKEN_LENGTH} bytes`);
    let alg: unknown;
    let iss: unknown;
    try {
      alg = decodeProtectedHeader(token).alg;
      iss = decodeJwt(token).iss;
    } catch (e) {
      throw new AuthError('malformed_token', `token is not a JWT: ${(e as Error).message}`);
    }
    if (typeof alg !== 'string') throw new AuthError('malformed_token', 'token header has no "alg"');
    if (alg.toLowerCase() === 'none') throw new AuthError('algorithm_not_allowed', 'unsigned tokens (alg "none") are never accepted');
    if (!this.algorithms.has(alg)) {
      throw new AuthError('algorithm_not_allowed', `token signed with ${quote(alg)}; accepted: ${this.cfg.algorithms.join(', ')}`);
    }
    if (iss !== this.cfg.issuer) {
      throw new AuthError('wrong_issuer', iss === undefined ? `token has no "iss"; expected "${this.cfg.issuer}"` : `token issued by ${quote(iss)}, expected "${this.cfg.issuer}"`);
    }
  }

  /** A token without `kid` when the issuer publishes several keys of its type: try each of them. */
  private async verifyWithEach(token: string, candidates: errors.JWKSMultipleMatchingKeys, options: JWTVerifyOptions): Promise<JWTPayload> {
    let last: unknown = candidates;
    for await (const key of candidates) {
      try {
        return (await jwtVerify(token, key, options)).payload;
      } catch (e) {
        last = e;
        if (!(e instanceof errors.JWSSignatureVerificationFailed)) break;
      }
    }
    throw authErrorFrom(last, this.expected);
  }
}

/**
 * A verifier for bearer JWTs from one issuer. Bad configuration throws here, at start-up, rather
 * than refusing every request later.
 */
export function createVerifier(cfg: IdentityConfig, opts: VerifierOptions = {}): TokenVerifier {
  checkIdentityConfig(cfg);
  const jwt = new JwtVerifier(cfg, opts);
  if (!cfg.introspection) return jwt;
  return routeByTokenShape(jwt, new IntrospectingVerifier(cfg, cfg.introspection, { ...(opts.fetch ? { fetch: opts.fetch } : {}), ...(opts.now ? { now: opts.now } : {}) }));
}
