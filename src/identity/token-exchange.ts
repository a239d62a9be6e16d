import { createHash, timingSafeEqual } from 'node:crypto';
import type { DevClaims } from './mint.js';

/**
 * RFC 8693 token exchange, as the dev issuer's token endpoint does it: a registered client (the
 * gateway) trades a caller's access token that was issued *to it* for a short-lived token for one
 * downstream resource. The new token keeps the caller as `sub` and names the client as the current
 * actor (`act`), so downstream policy judges the caller and records who acted for them. The client
 * cannot mint identities: without a caller's valid token addressed to it, it gets nothing.
 */

export const GRANT_TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const TOKEN_TYPE_ACCESS = 'urn:ietf:params:oauth:token-type:access_token';
export const TOKEN_TYPE_JWT = 'urn:ietf:params:oauth:token-type:jwt';

export interface ExchangeClient {
  clientId: string;
  /** Compared in constant time (of its SHA-256). */
  secret: string;
  /** The subject token must have been issued for one of these audiences (the client's own resource). */
  subjectAudiences: string[];
  /** Resources the client may ask tokens for. */
  audiences: string[];
  /** Upper bound of an issued token's lifetime (default 300 s; never beyond the subject token's). */
  maxTtlSec?: number;
}

export class OAuthError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
    this.name = 'OAuthError';
  }
}

/** Claims of a verified subject token, as the issuer signed them. */
export type SubjectClaims = Record<string, unknown> & { sub: string; aud: string | string[]; exp: number };

function digest(s: string): Buffer { return createHash('sha256').update(s).digest(); }

/** client_secret_basic (RFC 6749 §2.3.1): `Basic base64(urlencode(id):urlencode(secret))`. */
export function authenticateClient(authorization: string | undefined, clients: ExchangeClient[]): ExchangeClient {
  if (!authorization || !authorization.startsWith('Basic ')) throw new OAuthError(401, 'invalid_client', 'client authentication required (HTTP Basic, client_secret_basic)');
  let id: string, secret: string;
  try {
    const raw = Buffer.from(authorization.slice(6).trim(), 'base64').toString('utf8');
    const colon = raw.indexOf(':');
    if (colon < 0) throw new Error('no colon');
    id = decodeURIComponent(raw.slice(0, colon));
    secret = decodeURIComponent(raw.slice(colon + 1));
  } catch {
    throw new OAuthError(401, 'invalid_client', 'malformed Basic credentials');
  }
  const client = clients.find((c) => c.clientId === id);
  // Compare against something even for an unknown id, so timing does not tell which ids exist.
  const ok = timingSafeEqual(digest(secret), digest(client?.secret ?? '\0unknown'));
  if (!client || !ok) throw new OAuthError(401, 'invalid_client', 'unknown client or wrong secret');
  return client;
}

export interface ExchangeRequest {
  grant_type?: string;
  subject_token?: string;
  subject_token_type?: string;
  resource?: string;
  audience?: string;
  requested_token_type?: string;
}

/** Checks the request's form fields; returns the target audience. */
export function checkExchangeRequest(r: ExchangeRequest, client: ExchangeClient): string {
  if (r.grant_type !== GRANT_TOKEN_EXCHANGE) throw new OAuthError(400, 'unsupported_grant_type', `this token endpoint supports only ${GRANT_TOKEN_EXCHANGE}`);
  if (!r.subject_token) throw new OAuthError(400, 'invalid_request', 'subject_token is required');
  if (r.subject_token_type !== TOKEN_TYPE_ACCESS && r.subject_token_type !== TOKEN_TYPE_JWT) throw new OAuthError(400, 'invalid_request', `subject_token_type must be ${TOKEN_TYPE_ACCESS}`);
  if (r.requested_token_type !== undefined && r.requested_token_type !== TOKEN_TYPE_ACCESS) throw new OAuthError(400, 'invalid_request', `requested_token_type must be ${TOKEN_TYPE_ACCESS}`);
  const target = r.resource ?? r.audience;
  if (!target) throw new OAuthError(400, 'invalid_request', 'resource (RFC 8707) or audience is required');
  if (r.resource !== undefined && r.audience !== undefined && r.resource !== r.audience) throw new OAuthError(400, 'invalid_request', 'give resource or audience, not two different targets');
  if (!client.audiences.includes(target)) throw new OAuthError(400, 'invalid_target', `client "${client.clientId}" may not obtain tokens for ${target}`);
  return target;
}

/** The delegated token's claims: the caller's identity, the client as current actor, the new audience. */
export function delegatedClaims(subject: SubjectClaims, client: ExchangeClient, target: string, nowSec: number): DevClaims {
  const auds = typeof subject.aud === 'string' ? [subject.aud] : subject.aud;
  if (!auds.some((a) => client.subjectAudiences.includes(a))) {
    throw new OAuthError(400, 'invalid_grant', `the subject token was not issued to client "${client.clientId}" (audience ${auds.join(', ')})`);
  }
  const ttl = Math.min(client.maxTtlSec ?? 300, subject.exp - nowSec);
  if (ttl <= 0) throw new OAuthError(400, 'invalid_grant', 'the subject token has expired');
  const prior = subject.act;
  const act = prior && typeof prior === 'object' && !Array.isArray(prior) ? { sub: client.clientId, act: prior as { sub: string } } : { sub: client.clientId };
  const extra: Record<string, unknown> = {};
  for (const c of ['team', 'groups', 'agent', 'scope', 'azp', 'client_id']) if (subject[c] !== undefined) extra[c] = subject[c];
  return { sub: subject.sub, audience: target, ttlSec: ttl, act, extra, nowSec };
}
