import { randomBytes } from 'node:crypto';
import type { OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';

/**
 * A person at a browser, for the MCP OAuth flow in tests: follows redirects through Hydra and the
 * login/consent app with a cookie jar (Hydra's CSRF cookies), fills the sign-in form, and stops
 * at the client's redirect URI with the authorization code (or the error the server sent).
 */
export class TestBrowser {
  private readonly jar = new Map<string, Map<string, string>>();
  constructor(private readonly user: { username: string; password: string }) {}

  private cookieHeader(u: URL): string {
    return [...(this.jar.get(u.hostname) ?? new Map<string, string>())].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  private keep(u: URL, res: Response): void {
    const jar = this.jar.get(u.hostname) ?? new Map<string, string>();
    for (const c of res.headers.getSetCookie()) {
      const pair = c.split(';')[0] ?? '';
      const eq = pair.indexOf('=');
      if (eq > 0) jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
    this.jar.set(u.hostname, jar);
  }

  /** Visits url; returns the redirect URI the flow ends at, with code or error in its query. */
  async authorize(start: URL, redirectUri: string): Promise<URL> {
    let url = start;
    let init: RequestInit = {};
    for (let hop = 0; hop < 20; hop++) {
      if (url.href.startsWith(redirectUri)) return url;
      const headers = new Headers(init.headers);
      const cookie = this.cookieHeader(url);
      if (cookie) headers.set('cookie', cookie);
      const res = await fetch(url, { ...init, headers, redirect: 'manual', signal: AbortSignal.timeout(10_000) });
      this.keep(url, res);
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        await res.body?.cancel();
        url = new URL(location, url);
        init = {};
        continue;
      }
      const body = await res.text();
      const challenge = /name="challenge" value="([^"]*)"/.exec(body)?.[1];
      if (res.status === 200 && challenge !== undefined && init.method !== 'POST') {
        url = new URL('/login', url);
        init = {
          method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ challenge, username: this.user.username, password: this.user.password }).toString(),
        };
        continue;
      }
      throw new Error(`the login flow stopped at ${url.href}: HTTP ${res.status}: ${body.slice(0, 300)}`);
    }
    throw new Error('too many redirects in the login flow');
  }
}

/** An MCP client's OAuth state in memory, with the browser standing in for the user. */
export class TestOAuthProvider implements OAuthClientProvider {
  client: OAuthClientInformationMixed | undefined;
  saved: OAuthTokens | undefined;
  verifier = '';
  /** Where the last authorization ended (code or error), for the test to finish the flow. */
  landed: URL | null = null;
  readonly redirectUrl = 'http://127.0.0.1:1/callback';

  /** Set to ask for another resource than the server's metadata names (RFC 8707). */
  validateResourceURL?: (serverUrl: string | URL, resource?: string) => Promise<URL | undefined>;

  constructor(private readonly browser: TestBrowser, resourceOverride?: string) {
    if (resourceOverride !== undefined) this.validateResourceURL = () => Promise.resolve(new URL(resourceOverride));
  }

  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: 'tollgate-test-agent', redirect_uris: [this.redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
      token_endpoint_auth_method: 'none', scope: 'openid offline_access',
      // Hydra echoes unset client_uri as "" and contacts as null, which the SDK's schema refuses;
      // a client that sets them gets them back as sent (docs/identity.md, "Hydra and MCP clients").
      client_uri: 'http://127.0.0.1:1/agent', contacts: ['agent-owner@example.com'],
    };
  }

  /** Hydra requires a state of at least 8 characters (CSRF protection of the redirect). */
  state(): string { return randomBytes(16).toString('hex'); }
  clientInformation(): OAuthClientInformationMixed | undefined { return this.client; }
  saveClientInformation(info: OAuthClientInformationMixed): void { this.client = info; }
  tokens(): OAuthTokens | undefined { return this.saved; }
  saveTokens(t: OAuthTokens): void { this.saved = t; }
  saveCodeVerifier(v: string): void { this.verifier = v; }
  codeVerifier(): string { return this.verifier; }
  invalidateCredentials(scope: 'all' | 'client' | 'tokens' | 'verifier' | 'discovery'): void {
    if (scope === 'all' || scope === 'tokens') this.saved = undefined;
    if (scope === 'all' || scope === 'client') this.client = undefined;
  }

  async redirectToAuthorization(url: URL): Promise<void> {
    this.landed = await this.browser.authorize(url, this.redirectUrl);
  }
}
