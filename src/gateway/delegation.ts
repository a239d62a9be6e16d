import { createHash } from 'node:crypto';
import { GRANT_TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS } from '../identity/token-exchange.js';

/**
 * The gateway's side of RFC 8693: trade the caller's token (issued to the gateway) for a token
 * for one governed server, with the caller as subject and the gateway as actor. Tokens are cached
 * per (caller token, audience) until shortly before they expire; concurrent requests for the same
 * pair share one exchange.
 */

export interface ExchangerOptions {
  tokenEndpoint: string;
  clientId: string;
  clientSecret: string;
  /** Refresh this long before expiry (default 30 s). */
  skewSec?: number;
  maxEntries?: number;
  timeoutMs?: number;
}

export class DelegationError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = 'DelegationError';
  }
}

interface Entry { token: string; expiresAt: number }

export class TokenExchanger {
  private readonly cache = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<string>>();

  constructor(private readonly o: ExchangerOptions) {}

  async tokenFor(callerToken: string, audience: string): Promise<string> {
    const key = createHash('sha256').update(callerToken).update('\0').update(audience).digest('base64');
    const hit = this.cache.get(key);
    const now = Date.now() / 1000;
    if (hit && hit.expiresAt - (this.o.skewSec ?? 30) > now) return hit.token;
    const running = this.inflight.get(key);
    if (running) return running;
    const p = this.exchange(callerToken, audience).then((e) => {
      if (this.cache.size >= (this.o.maxEntries ?? 10_000)) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(key, e);
      return e.token;
    }).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  private async exchange(subjectToken: string, audience: string): Promise<Entry> {
    const body = new URLSearchParams({ grant_type: GRANT_TOKEN_EXCHANGE, subject_token: subjectToken, subject_token_type: TOKEN_TYPE_ACCESS, resource: audience, requested_token_type: TOKEN_TYPE_ACCESS });
    const basic = Buffer.from(`${encodeURIComponent(this.o.clientId)}:${encodeURIComponent(this.o.clientSecret)}`).toString('base64');
    let res: Response;
    try {
      res = await fetch(this.o.tokenEndpoint, {
        method: 'POST', body, headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
        signal: AbortSignal.timeout(this.o.timeoutMs ?? 5000),
      });
    } catch (e) {
      throw new DelegationError('unavailable', `token endpoint ${this.o.tokenEndpoint} unreachable: ${(e as Error).message}`);
    }
    let json: { access_token?: unknown; expires_in?: unknown; error?: unknown; error_description?: unknown };
    try { json = await res.json() as typeof json; } catch { json = {}; }
    if (!res.ok || typeof json.access_token !== 'string') {
      throw new DelegationError(typeof json.error === 'string' ? json.error : `http_${res.status}`, `token exchange refused (${res.status}): ${typeof json.error_description === 'string' ? json.error_description : json.error ?? 'no access_token'}`);
    }
    const ttl = typeof json.expires_in === 'number' && json.expires_in > 0 ? json.expires_in : 60;
    return { token: json.access_token, expiresAt: Date.now() / 1000 + ttl };
  }
}
