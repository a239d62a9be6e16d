import { randomUUID } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
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
/** How often, at most, the key file is looked at for a replacement (a rotated mounted secret). */
const KEY_CHECK_INTERVAL_MS = 1000;

interface SigningKey { key: CryptoKey; kid: string; stamp: string }

function fileStamp(path: string): string {
  const st = statSync(path);
  return `${st.mtimeMs}:${st.size}:${st.ino}`;
}

async function loadKey(cfg: UpstreamCredentialsConfig): Promise<SigningKey> {
  let pem: string;
  let stamp: string;
  try { stamp = fileStamp(cfg.keyFile); pem = readFileSync(cfg.keyFile, 'utf8'); } catch (e) { throw new Error(`upstream_credentials.key_file: ${(e as Error).message}`); }
  let key: CryptoKey;
  try { key = await importPKCS8(pem, cfg.alg, { extractable: true }); } catch (e) { throw new Error(`upstream_credentials.key_file ${cfg.keyFile}: not a PKCS#8 ${cfg.alg} private key (${(e as Error).message})`); }
  // The kid is the key's RFC 7638 thumbprint: stable across restarts, different for a new key.
  const pub: Record<string, unknown> = { ...(await exportJWK(key)) };
  for (const k of ['d', 'p', 'q', 'dp', 'dq', 'qi']) delete pub[k];
  return { key, kid: await calculateJwkThumbprint(pub), stamp };
}

export class UpstreamCredentialMinter {
  private readonly cache = new Map<string, UpstreamCredential>();
  private readonly inflight = new Map<string, Promise<UpstreamCredential>>();
  private lastCheckMs = 0;
  private reloading: Promise<void> | null = null;

  private constructor(private readonly cfg: UpstreamCredentialsConfig, private signing: SigningKey, private readonly now: () => number,
    private readonly onKeyProblem: (message: string) => void) {}

  static async open(cfg: UpstreamCredentialsConfig, now: () => number = Date.now, onKeyProblem: (message: string) => void = () => undefined): Promise<UpstreamCredentialMinter> {
    if (!(cfg.ttlSec > cfg.renewBeforeSec && cfg.renewBeforeSec >= 0)) throw new Error('upstream_credentials: ttl_sec must be longer than renew_before_sec');
    return new UpstreamCredentialMinter(cfg, await loadKey(cfg), now, onKeyProblem);
  }

  /** The kid new credentials are signed with. */
  get kid(): string { return this.signing.kid; }

  /**
   * Key rotation by replacing the mounted file: a changed file is loaded before the next signing.
   * A file that does not load (half written, wrong type) leaves the current key in use, so a
   * rotation never fails a call; credentials already handed out keep their key until they expire.
   */
  private async currentKey(nowMs: number): Promise<SigningKey> {
    if (nowMs - this.lastCheckMs >= KEY_CHECK_INTERVAL_MS && !this.reloading) {
      this.lastCheckMs = nowMs;
      this.reloading = (async () => {
        try {
          if (fileStamp(this.cfg.keyFile) === this.signing.stamp) return;
          this.signing = await loadKey(this.cfg);
        } catch (e) {
          this.onKeyProblem(`keeping the current upstream signing key: ${(e as Error).message}`);
        }
      })().finally(() => { this.reloading = null; });
    }
    if (this.reloading) await this.reloading;
    return this.signing;
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
    const signing = await this.currentKey(nowMs);
    const id = randomUUID();
    const iat = Math.floor(nowMs / 1000);
    const exp = iat + this.cfg.ttlSec;
    const token = await new SignJWT({
      ...(identity.agent ? { act: { sub: identity.agent } } : {}),
      ...(identity.team ? { team: identity.team } : {}),
    })
      .setProtectedHeader({ alg: this.cfg.alg, kid: signing.kid, typ: 'at+jwt' })
      .setIssuer(this.cfg.issuer).setSubject(identity.sub).setAudience(this.cfg.audience)
      .setIssuedAt(iat).setExpirationTime(exp).setJti(id)
      .sign(signing.key);
    return { id, authorization: `Bearer ${token}`, expiresAtMs: exp * 1000 };
  }
}
