import { randomUUID } from 'node:crypto';
import { SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { signingKey, type StoredKey } from './keystore.js';

/** An RFC 8693 actor: its own claims plus, optionally, the actor it acts for. */
export interface ActClaim {
  sub: string;
  act?: ActClaim;
  [claim: string]: unknown;
}

export interface DevClaims {
  sub: string;
  team?: string;
  agent?: string;
  groups?: string[];
  /** Written as the space-separated `scope` claim. */
  scopes?: string[];
  audience: string | string[];
  /** Lifetime in seconds from now (negative gives an already expired token, for tests). */
  ttlSec: number;
  /** An actor subject, a chain of them (current actor first), or a ready `act` object. */
  act?: string | string[] | ActClaim;
  /** Applied last, so it can override or (with undefined) drop any claim above; tests use it to build bad tokens. */
  extra?: Record<string, unknown>;
  /** Seconds since epoch used as "now" (default: the real clock). */
  nowSec?: number;
}

function actClaim(act: DevClaims['act']): ActClaim | undefined {
  if (act === undefined) return undefined;
  if (typeof act === 'string') return { sub: act };
  if (!Array.isArray(act)) return act;
  let chain: ActClaim | undefined;
  for (const sub of [...act].reverse()) chain = chain ? { sub, act: chain } : { sub };
  return chain;
}

/** The claims a dev token carries, using the default claim names authz reads (team, groups, agent). */
export function devPayload(issuer: string, c: DevClaims): JWTPayload {
  if (typeof c.sub !== 'string' || c.sub === '') throw new Error('a token needs a non-empty sub');
  const aud = typeof c.audience === 'string' ? c.audience : [...c.audience];
  if (aud.length === 0) throw new Error('a token needs an audience');
  if (!Number.isFinite(c.ttlSec)) throw new Error('ttlSec must be a number of seconds');
  const now = c.nowSec ?? Math.floor(Date.now() / 1000);
  const payload: JWTPayload = { iss: issuer, sub: c.sub, aud, iat: now, exp: now + Math.round(c.ttlSec), jti: randomUUID() };
  if (c.team !== undefined) payload.team = c.team;
  if (c.agent !== undefined) payload.agent = c.agent;
  if (c.groups !== undefined) payload.groups = [...c.groups];
  if (c.scopes !== undefined) payload.scope = c.scopes.join(' ');
  const act = actClaim(c.act);
  if (act) payload.act = act;
  return { ...payload, ...c.extra };
}

/** `imported` saves re-importing the private key when the caller already holds it. */
export async function signDevToken(key: StoredKey, issuer: string, claims: DevClaims, imported?: CryptoKey): Promise<string> {
  return new SignJWT(devPayload(issuer, claims))
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
    .sign(imported ?? (await signingKey(key)));
}
