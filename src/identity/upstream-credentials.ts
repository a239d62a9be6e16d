import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { calculateJwkThumbprint, exportJWK, importPKCS8, SignJWT, type CryptoKey } from 'jose';
import type { Identity } from './types.js';

/** authz config `upstream_credentials` (docs/identity.md, "Per-call upstream credentials"). */
export interface UpstreamCredentialsConfig {
  /** PKCS#8 PEM private key, read from a mounted secret file (never from the config itself). */
  keyFile: string;
  alg: 'ES256' | 'RS256' | 'EdDSA';
  /** `iss` of the credentials: how the upstream knows they are Tollgate's. */
  issuer: string;
  /** `aud`: the upstream MCP server (its resource URL). */
  audience: string;
  /** Lifetime in seconds (minutes, not hours). */
  ttlSec: number;
  /** A cached credential is replaced this long before it expires, so none reaches the upstream stale. */
  renewBeforeSec: number;
  /** Callers with a credential kept at once (oldest out first). */
  cacheMaxEntries: number;
}

export interface UpstreamCredential {
  /** The credential's `jti`: what decision records carry. */
  id: string;
  /** The Authorization header value for the upstream. */
  authorization: string;
  expiresAtMs: number;
}

/** Whose credential: the same person through a different agent gets a different one. */
export function callerKey(id: Identity): string {
  return JSON.stringify([id.iss, id.sub, id.agent]);
}

/**
 * Short-lived tokens for the upstream, one per caller: `sub` is the caller, `act` the agent acting
 * for them (RFC 8693 §4.1), `aud` the upstream. The agent never sees them (authz sets the header
 * after Envoy removed the caller's own token), and a leaked one is good for minutes at one server.
 */
export class UpstreamCredentialMinter {
  private readonly cache = new Map<string, UpstreamCredential>();
  private readonly inflight = new Map<string, Promise<UpstreamCredential>>();

  private constructor(private readonly cfg: UpstreamCredentialsConfig, private readonly key: CryptoKey, readonly kid: string, private readonly now: () => number) {}

  static async open(cfg: UpstreamCredentialsConfig, now: () => number = Date.now): Promise<UpstreamCredentialMinter> {
    if (!(cfg.ttlSec > cfg.renewBeforeSec && cfg.renewBeforeSec >= 0)) throw new Error('upstream_credentials: ttl_sec must be longer than renew_before_sec');
    let pem: string;
    try { pem = readFileSync(cfg.keyFile, 'utf8'); } catch (e) { throw new Error(`upstream_credentials.key_file: ${(e as Error).message}`); }
    let key: CryptoKey;
    try { key = await importPKCS8(pem, cfg.alg, { extractable: true }); } catch (e) { throw new Error(`upstream_credentials.key_file ${cfg.keyFile}: not a PKCS#8 ${cfg.alg} private key (${(e as Error).message})`); }
    // The kid is the key's RFC 7638 thumbprint: stable across restarts, different for a new key.
    const jwk = await exportJWK(key);
    const pub = { ...jwk };
    for (const k of ['d', 'p', 'q', 'dp', 'dq', 'qi']) delete (pub as Record<string, unknown>)[k];
    return new UpstreamCredentialMinter(cfg, key, await calculateJwkThumbprint(pub), now);
  }

  /** The caller's current credential: cached until renewBeforeSec before it expires. */
  credentialFor(identity: Identity): Promise<UpstreamCredential> {
    const k = callerKey(identity);
    const now = this.now();
    const hit = this.cache.get(k);
    if (hit && hit.expiresAtMs - this.cfg.renewBeforeSec * 1000 > now) return Promise.resolve(hit);
    let p = this.inflight.get(k);
    if (!p) {
      p = this.mint(identity, now).then((c) => {
        this.cache.delete(k);
        if (this.cache.size >= this.cfg.cacheMaxEntries) {
          const oldest = this.cache.keys().next();
          if (!oldest.done) this.cache.delete(oldest.value);
        }
        if (this.cfg.cacheMaxEntries > 0) this.cache.set(k, c);
        return c;
      }).finally(() => this.inflight.delete(k));
      this.inflight.set(k, p);
    }
    return p;
  }

  private async mint(identity: Identity, nowMs: number): Promise<UpstreamCredential> {
    const id = randomUUID();
    const iat = Math.floor(nowMs / 1000);
    const exp = iat + this.cfg.ttlSec;
    const token = await new SignJWT({
      ...(identity.agent ? { act: { sub: identity.agent } } : {}),
      ...(identity.team ? { team: identity.team } : {}),
    })
      .setProtectedHeader({ alg: this.cfg.alg, kid: this.kid, typ: 'at+jwt' })
      .setIssuer(this.cfg.issuer).setSubject(identity.sub).setAudience(this.cfg.audience)
      .setIssuedAt(iat).setExpirationTime(exp).setJti(id)
      .sign(this.key);
    return { id, authorization: `Bearer ${token}`, expiresAtMs: exp * 1000 };
  }
}
