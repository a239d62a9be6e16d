import type { CallerAttributes } from '../contract/policy.js';
import type { ProfileName } from './profiles.js';

/** A caller whose bearer token was verified. Claims are as the issuer signed them. */
export interface Identity extends CallerAttributes {
  sub: string;
  iss: string;
  /** Audience(s) the token was issued for (already checked against ours). */
  aud: string[];
  /** RFC 8693 `act` chain, outermost actor first: [{sub: "agent-x"}, {sub: "orchestrator"}]. */
  delegation: Array<Record<string, unknown> & { sub?: string }>;
  /** Seconds since epoch. */
  expiresAt: number;
}

/** Why a token was refused; stable strings, shown to clients and recorded in decision logs. */
export type AuthFailure =
  | 'missing_token'
  | 'malformed_token'
  | 'expired'
  | 'not_yet_valid'
  | 'bad_signature'
  | 'unknown_key'
  | 'wrong_issuer'
  | 'wrong_audience'
  | 'algorithm_not_allowed'
  | 'issuer_unavailable'
  | 'invalid_claims'
  /** RFC 7662: the authorization server says the (opaque) token is not active. */
  | 'inactive_token';

export class AuthError extends Error {
  constructor(readonly failure: AuthFailure, message: string) {
    super(message);
    this.name = 'AuthError';
  }
}

export interface IdentityConfig {
  /** Issuer URL; OIDC discovery is read from `${issuer}/.well-known/openid-configuration`. */
  issuer: string;
  /** Accepted audiences: the governed resource's URL (RFC 8707), so tokens for other services fail. */
  audience: string[];
  /** JWS algorithms accepted. Never includes "none". */
  algorithms: string[];
  /** Override the discovered jwks_uri (air-gapped setups). */
  jwksUri?: string;
  clockToleranceSec: number;
  claims: { team: string; groups: string; agent: string };
  /** Opaque tokens: RFC 7662 introspection (JWTs still verify locally). */
  introspection?: IntrospectionConfig;
  /** Which provider's claim shapes to read (profiles.ts); default "generic". */
  profile?: ProfileName;
  /**
   * After a JWKS fetch, a token with an unknown `kid` does not trigger another fetch for this long
   * (the refetch rate limit). Default 30.
   */
  jwksCooldownSec?: number;
  /** The JWKS is refetched once it is older than this, even if every `kid` is known. Default 600. */
  jwksCacheMaxAgeSec?: number;
}

export interface TokenVerifier {
  /** Resolves the identity or rejects with AuthError. Never resolves for an invalid token. */
  verify(token: string): Promise<Identity>;
}

/** RFC 7662 settings (authz config `identity.introspection`, docs/identity.md). */
export interface IntrospectionConfig {
  /** The authorization server's introspection endpoint. */
  endpoint: string;
  /** Client authentication (HTTP Basic) when the endpoint requires it; the secret is read from a file. */
  clientId?: string;
  clientSecretFile?: string;
  /** At most this many answers are kept (oldest first out). */
  cacheMaxEntries: number;
  /**
   * An active answer is reused for at most this long (and never past the token's exp): the bound on
   * how long a revoked token can still pass.
   */
  cacheTtlSec: number;
  timeoutMs?: number;
}
