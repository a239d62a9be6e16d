import { createRemoteJWKSet, customFetch, errors, type FetchImplementation, type JWTVerifyGetKey, type RemoteJWKSet } from 'jose';
import { Backoff } from './backoff.js';
import { AuthError, type IdentityConfig } from './types.js';

export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

export interface IssuerKeysOptions {
  fetch: FetchLike;
  /** Milliseconds since epoch; drives the retry backoff. */
  now: () => number;
  /** Per HTTP request to the issuer. */
  timeoutMs: number;
  backoff: { initialMs: number; maxMs: number };
}

const MAX_DISCOVERY_BYTES = 1024 * 1024;

function httpUrl(s: unknown, what: string): URL {
  let u: URL;
  try {
    u = new URL(String(s));
  } catch {
    throw new Error(`${what} ${JSON.stringify(s)} is not a URL`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error(`${what} ${JSON.stringify(s)} must be http(s)`);
  return u;
}

/** OIDC Discovery §4: a trailing "/" of the issuer is dropped before the well-known suffix. */
export function discoveryUrl(issuer: string): string {
  return `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
}

function describe(e: unknown): string {
  if (e instanceof AuthError) return e.message;
  const err = e as Error & { cause?: { code?: string; message?: string } };
  if (err?.name === 'TimeoutError' || err?.name === 'AbortError') return 'timed out';
  const cause = err?.cause?.code ?? err?.cause?.message;
  return cause ? `${err.message} (${cause})` : String(err?.message ?? e);
}

/**
 * The issuer's signing keys: discovery once, then jose's remote JWKS, which refetches when it sees
 * an unknown `kid` at most once per cooldown. Failures to reach the issuer come out as
 * issuer_unavailable and are retried with backoff, never remembered as success.
 */
export class IssuerKeys {
  private jwks: RemoteJWKSet | null = null;
  private pending: Promise<RemoteJWKSet> | null = null;
  private readonly discoveryBackoff: Backoff;
  private readonly jwksBackoff: Backoff;

  constructor(private readonly cfg: IdentityConfig, private readonly opts: IssuerKeysOptions) {
    this.discoveryBackoff = new Backoff(opts.backoff.initialMs, opts.backoff.maxMs, opts.now);
    this.jwksBackoff = new Backoff(opts.backoff.initialMs, opts.backoff.maxMs, opts.now);
    httpUrl(cfg.issuer, 'identity issuer');
    if (cfg.jwksUri !== undefined) this.jwks = this.remoteSet(httpUrl(cfg.jwksUri, 'identity jwksUri'));
  }

  /** For jwtVerify: resolves the key for a token's header, or throws. */
  readonly resolve: JWTVerifyGetKey = async (header, token) => {
    const jwks = this.jwks ?? (await this.discover());
    try {
      return await jwks(header, token);
    } catch (e) {
      if (e instanceof AuthError || e instanceof errors.JWKSNoMatchingKey || e instanceof errors.JWKSMultipleMatchingKeys || e instanceof errors.JOSENotSupported) throw e;
      throw new AuthError('issuer_unavailable', `cannot load the issuer's keys: ${describe(e)}`);
    }
  };

  private discover(): Promise<RemoteJWKSet> {
    if (this.pending) return this.pending;
    this.discoveryBackoff.check();
    this.pending = this.fetchDiscovery().then(
      (uri) => {
        this.discoveryBackoff.succeeded();
        this.jwks = this.remoteSet(uri);
        return this.jwks;
      },
      (e: unknown) => {
        const msg = `OIDC discovery at ${discoveryUrl(this.cfg.issuer)} failed: ${describe(e)}`;
        this.discoveryBackoff.failed(msg);
        throw new AuthError('issuer_unavailable', msg);
      },
    ).finally(() => { this.pending = null; });
    return this.pending;
  }

  private async fetchDiscovery(): Promise<URL> {
    const res = await this.opts.fetch(discoveryUrl(this.cfg.issuer), {
      method: 'GET', redirect: 'error', headers: { accept: 'application/json' }, signal: AbortSignal.timeout(this.opts.timeoutMs),
    });
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new Error(`HTTP ${res.status}`);
    }
    const text = await res.text();
    if (text.length > MAX_DISCOVERY_BYTES) throw new Error('discovery document is too large');
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      throw new Error('discovery document is not JSON');
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error('discovery document is not a JSON object');
    const { issuer, jwks_uri: jwksUri } = doc as Record<string, unknown>;
    // OIDC Discovery §4.3: the document must name exactly the issuer we asked about.
    if (issuer !== this.cfg.issuer) {
      throw new Error(`it names issuer ${JSON.stringify(issuer)}, but identity.issuer is "${this.cfg.issuer}"; they must match exactly`);
    }
    if (typeof jwksUri !== 'string') throw new Error('discovery document has no jwks_uri');
    return httpUrl(jwksUri, 'jwks_uri');
  }

  private remoteSet(url: URL): RemoteJWKSet {
    return createRemoteJWKSet(url, {
      timeoutDuration: this.opts.timeoutMs,
      cooldownDuration: (this.cfg.jwksCooldownSec ?? 30) * 1000,
      cacheMaxAge: (this.cfg.jwksCacheMaxAgeSec ?? 600) * 1000,
      [customFetch]: this.fetchJwks,
    });
  }

  // jose retries a failed JWKS fetch on the very next token; the backoff gate spaces that out
  // during an outage without touching lookups of keys already loaded.
  private readonly fetchJwks: FetchImplementation = async (url, init) => {
    this.jwksBackoff.check();
    let res: Response;
    try {
      res = await this.opts.fetch(url, init);
    } catch (e) {
      this.jwksBackoff.failed(`JWKS fetch from ${url} failed: ${describe(e)}`);
      throw e;
    }
    if (res.status === 200) this.jwksBackoff.succeeded();
    else this.jwksBackoff.failed(`JWKS fetch from ${url} failed: HTTP ${res.status}`);
    return res;
  };
}
