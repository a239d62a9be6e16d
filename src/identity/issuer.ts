import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLocalJWKSet, jwtVerify, type CryptoKey, type JSONWebKeySet } from 'jose';
import { activeKey, addKey, loadOrCreateKeyRing, publicJwk, signingKey, type KeyRing, type SigningAlg, type StoredKey } from './keystore.js';
import { signDevToken, type DevClaims } from './mint.js';
import {
  authenticateClient, checkExchangeRequest, delegatedClaims, GRANT_TOKEN_EXCHANGE, OAuthError, TOKEN_TYPE_ACCESS,
  type ExchangeClient, type ExchangeRequest, type SubjectClaims,
} from './token-exchange.js';

export type { DevClaims } from './mint.js';
export type { SigningAlg } from './keystore.js';

export interface DevIssuerOptions {
  /** Loopback by default: this issuer mints tokens for anyone who can reach its state dir, not for a network. */
  host?: string;
  /** 0 picks a free port (default 5556). */
  port?: number;
  /** Keys live in `<stateDir>/issuer/signing-keys.json`, so a restart serves the same keys. */
  stateDir: string;
  /** The `iss` value and discovery base; default `http://<host>:<port>`. */
  issuer?: string;
  /** Algorithm of keys this issuer creates (first start, rotate). Existing keys keep theirs. Default ES256. */
  alg?: SigningAlg;
  /**
   * Clients allowed RFC 8693 token exchange at `<issuer>/token` (the gateway). None: the token
   * endpoint answers unauthorized_client for everyone.
   */
  exchangeClients?: ExchangeClient[];
}

const MAX_FORM_BYTES = 16 * 1024;

function baseUrl(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/**
 * A minimal OIDC issuer for local use and tests: discovery, JWKS and in-process minting, plus an
 * RFC 8693 token-exchange endpoint for registered clients (the gateway). It has no login: caller
 * tokens come from mint() or `tollgate token`.
 */
export class DevIssuer {
  private signer: { key: StoredKey; crypto: CryptoKey } | null = null;

  private constructor(
    private readonly server: Server,
    readonly url: string,
    private ring: KeyRing,
    private readonly stateDir: string,
    private readonly alg: SigningAlg,
    private readonly exchangeClients: ExchangeClient[],
  ) {}

  static async start(opts: DevIssuerOptions): Promise<DevIssuer> {
    const host = opts.host ?? '127.0.0.1';
    const alg = opts.alg ?? 'ES256';
    const { ring } = await loadOrCreateKeyRing(opts.stateDir, alg);
    let issuer: DevIssuer | null = null;
    const server = createServer((req, res) => {
      if (issuer) issuer.handle(req, res);
      else { res.statusCode = 503; res.end(); }
    });
    const port = await listen(server, host, opts.port ?? 5556);
    issuer = new DevIssuer(server, opts.issuer ?? baseUrl(host, port), ring, opts.stateDir, alg, opts.exchangeClients ?? []);
    return issuer;
  }

  get tokenEndpoint(): string {
    return `${this.url.replace(/\/+$/, '')}/token`;
  }

  get jwksUri(): string {
    return `${this.url.replace(/\/+$/, '')}/jwks`;
  }

  /** The kid of the key that signs now. */
  get kid(): string {
    return activeKey(this.ring).kid;
  }

  get keyFile(): string {
    return this.ring.file;
  }

  discoveryDocument(): Record<string, unknown> {
    return {
      issuer: this.url,
      jwks_uri: this.jwksUri,
      id_token_signing_alg_values_supported: [...new Set(this.ring.keys.map((k) => k.alg))],
      subject_types_supported: ['public'],
      response_types_supported: ['id_token'],
      claims_supported: ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'team', 'groups', 'agent', 'scope', 'act'],
      scopes_supported: ['openid'],
      token_endpoint: this.tokenEndpoint,
      grant_types_supported: [GRANT_TOKEN_EXCHANGE],
      token_endpoint_auth_methods_supported: ['client_secret_basic'],
    };
  }

  jwks(): { keys: unknown[] } {
    return { keys: this.ring.keys.map(publicJwk) };
  }

  async mint(claims: DevClaims): Promise<string> {
    const key = activeKey(this.ring);
    if (this.signer?.key !== key) this.signer = { key, crypto: await signingKey(key) };
    return signDevToken(key, this.url, claims, this.signer.crypto);
  }

  /** Adds a key that signs from now on; the old ones stay in the JWKS. Returns the new kid. */
  async rotate(alg: SigningAlg = this.alg): Promise<string> {
    this.ring = await addKey(this.stateDir, alg);
    return this.kid;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    try {
      this.route(req, res);
    } catch (e) {
      // A request the URL parser rejects must not take the issuer down.
      if (!res.headersSent) send(res, 400, { error: 'invalid_request', error_description: (e as Error).message });
      else res.destroy();
    }
  }

  private route(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const issuerPath = new URL(this.url).pathname.replace(/\/+$/, '');
    if (path === new URL(this.tokenEndpoint).pathname) {
      if (req.method !== 'POST') { res.setHeader('allow', 'POST'); return send(res, 405, { error: 'method_not_allowed' }); }
      this.tokenRequest(req).then(
        (body) => send(res, 200, body),
        (e: Error) => {
          const o = e instanceof OAuthError ? e : new OAuthError(500, 'server_error', e.message);
          if (o.status === 401) res.setHeader('www-authenticate', 'Basic realm="tollgate-dev-issuer"');
          send(res, o.status, { error: o.code, error_description: o.message });
        },
      );
      return;
    }
    let body: unknown;
    if (path === `${issuerPath}/.well-known/openid-configuration` || path === `/.well-known/oauth-authorization-server${issuerPath}`) {
      body = this.discoveryDocument();
    } else if (path === new URL(this.jwksUri).pathname) {
      body = this.jwks();
    } else {
      return send(res, 404, { error: 'not_found', error_description: `this dev issuer serves ${issuerPath}/.well-known/openid-configuration and ${new URL(this.jwksUri).pathname}` });
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return send(res, 405, { error: 'method_not_allowed' });
    }
    send(res, 200, body, req.method === 'HEAD');
  }

  /** RFC 8693 token exchange (see token-exchange.ts for the rules). */
  private async tokenRequest(req: IncomingMessage): Promise<Record<string, unknown>> {
    const client = authenticateClient(req.headers.authorization, this.exchangeClients);
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/x-www-form-urlencoded') throw new OAuthError(400, 'invalid_request', 'send the request as application/x-www-form-urlencoded');
    const form = new URLSearchParams(await readBody(req));
    const fields: ExchangeRequest = {};
    for (const k of ['grant_type', 'subject_token', 'subject_token_type', 'resource', 'audience', 'requested_token_type'] as const) {
      if (form.getAll(k).length > 1) throw new OAuthError(400, 'invalid_request', `${k} appears more than once`);
      const v = form.get(k);
      if (v !== null) fields[k] = v;
    }
    const target = checkExchangeRequest(fields, client);
    let subject: SubjectClaims;
    try {
      const { payload } = await jwtVerify(fields.subject_token!, createLocalJWKSet(this.jwks() as JSONWebKeySet), { issuer: this.url });
      if (typeof payload.sub !== 'string' || payload.aud === undefined || typeof payload.exp !== 'number') throw new Error('token lacks sub, aud or exp');
      subject = payload as SubjectClaims;
    } catch (e) {
      throw new OAuthError(400, 'invalid_grant', `subject_token is not a valid token of this issuer: ${(e as Error).message}`);
    }
    const claims = delegatedClaims(subject, client, target, Math.floor(Date.now() / 1000));
    return { access_token: await this.mint(claims), issued_token_type: TOKEN_TYPE_ACCESS, token_type: 'Bearer', expires_in: claims.ttlSec };
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_FORM_BYTES) { reject(new OAuthError(413, 'invalid_request', `request body over ${MAX_FORM_BYTES} bytes`)); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown, headOnly = false): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(headOnly ? undefined : text);
}

/**
 * Signs a token with the dev issuer's key in stateDir, without the issuer running. Creates the key
 * when there is none yet, so an issuer started later on the same state dir serves it.
 */
export async function mintDevToken(stateDir: string, issuerUrl: string, claims: DevClaims, alg: SigningAlg = 'ES256'): Promise<string> {
  const { ring } = await loadOrCreateKeyRing(stateDir, alg);
  return signDevToken(activeKey(ring), issuerUrl, claims);
}
