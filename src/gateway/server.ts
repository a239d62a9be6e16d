import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { MiniLmEmbedder, type Embedder } from '../discovery/embedder.js';
import { refuseHost } from '../bridge/host-check.js';
import { bearerToken } from '../identity/bearer.js';
import { AuthError, type Identity, type TokenVerifier } from '../identity/types.js';
import { createVerifier } from '../identity/verifier.js';
import { createLogger, type Logger } from '../util/log.js';
import { DEFAULT_BODY_LIMITS, parseMcpBody } from '../mcp/jsonrpc.js';
import { listenAddress, type GatewayConfig } from './config.js';
import { TokenExchanger } from './delegation.js';
import { SearchIndexes } from './search-indexes.js';
import { GatewaySession } from './session.js';

/**
 * `tollgate gateway`: one Streamable HTTP MCP endpoint in front of several governed servers.
 * Callers authenticate to the gateway with a token issued for it; each session belongs to the
 * identity that opened it; calls go on through the servers' sidecars with the caller's delegated
 * token (RFC 8693), so every server's policy judges the caller and records the gateway as actor.
 */

const MAX_BODY = 4 * 1024 * 1024;
const MAX_SESSIONS = 10_000;
const IDLE_MS = 30 * 60_000;

export interface GatewayOptions {
  logger?: Logger;
  verifier?: TokenVerifier;
  /** Embedding model for optimizer search; started on first use when unset. */
  embedder?: Embedder | null;
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) { res.end(); return; }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw Object.assign(new Error(`request body over ${MAX_BODY} bytes`), { status: 413 });
    chunks.push(c as Buffer);
  }
  const raw = Buffer.concat(chunks);
  if (raw.length === 0) return undefined;
  // The checks authz makes in the mesh: UTF-8, nesting, batch size, message shape.
  const parsed = parseMcpBody(raw, { ...DEFAULT_BODY_LIMITS, maxBytes: MAX_BODY });
  if (!parsed.ok) throw Object.assign(new Error(parsed.error.message), { status: parsed.error.httpStatus, code: parsed.error.code });
  return parsed.value;
}

export class GatewayServer {
  private readonly sessions = new Map<string, { session: GatewaySession; transport: StreamableHTTPServerTransport }>();
  private readonly exchanger: TokenExchanger;
  private readonly verifier: TokenVerifier;
  private readonly indexes: SearchIndexes;
  private readonly log: Logger;
  private http!: HttpServer;
  private sweeper!: NodeJS.Timeout;
  private embedderP: Promise<Embedder | null> | null = null;
  url = '';

  private constructor(readonly cfg: GatewayConfig, tokenEndpoint: string, private readonly opts: GatewayOptions) {
    this.log = opts.logger ?? createLogger('gateway');
    this.verifier = opts.verifier ?? createVerifier({
      issuer: cfg.identity.issuer, audience: cfg.identity.audience ?? [cfg.publicUrl], algorithms: cfg.identity.algorithms,
      clockToleranceSec: 30, claims: { team: 'team', groups: 'groups', agent: 'agent' },
    });
    this.exchanger = new TokenExchanger({ tokenEndpoint, clientId: cfg.delegation.client_id, clientSecret: cfg.clientSecret });
    this.indexes = new SearchIndexes(cfg.optimizer.search, () => this.embedder());
  }

  static async start(cfg: GatewayConfig, opts: GatewayOptions = {}): Promise<GatewayServer> {
    const tokenEndpoint = cfg.delegation.token_endpoint ?? await discoverTokenEndpoint(cfg.identity.issuer);
    const g = new GatewayServer(cfg, tokenEndpoint, opts);
    await g.listen();
    return g;
  }

  private embedder(): Promise<Embedder | null> {
    if (this.opts.embedder !== undefined) return Promise.resolve(this.opts.embedder);
    if (this.cfg.optimizer.search === 'bm25') return Promise.resolve(null);
    this.embedderP ??= MiniLmEmbedder.start().catch((e: Error) => {
      // Search still works lexically; say so once, loudly, instead of failing find_tool.
      this.log.warn({ err: e.message }, 'embedding model unavailable: find_tool ranks with BM25 only');
      return null;
    });
    return this.embedderP;
  }

  private get metadataPath(): string {
    return `/.well-known/oauth-protected-resource${new URL(this.cfg.publicUrl).pathname}`;
  }

  private async listen(): Promise<void> {
    const { host, port } = listenAddress(this.cfg);
    this.http = createServer((req, res) => {
      this.handle(req, res).catch((e: Error & { status?: number; code?: number }) => {
        if (!e.status) this.log.error({ err: e.message }, 'request failed');
        send(res, e.status ?? 500, { jsonrpc: '2.0', id: null, error: { code: typeof e.code === 'number' ? e.code : -32600, message: e.message } });
      });
    });
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', (e: NodeJS.ErrnoException) => reject(new Error(e.code === 'EADDRINUSE' ? `gateway: ${host}:${port} is already in use; choose another with --listen or stop what holds it` : `gateway: cannot listen on ${host}:${port}: ${e.message}`)));
      this.http.listen(port, host, resolve);
    });
    const a = this.http.address() as AddressInfo;
    this.url = `http://${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}${this.cfg.path}`;
    this.sweeper = setInterval(() => this.sweep(), 60_000);
    this.sweeper.unref();
    this.log.info({ url: this.url, mode: this.cfg.mode, servers: this.cfg.servers.map((s) => s.name) }, 'gateway listening');
  }

  private unauthorized(res: ServerResponse, e: AuthError | Error): void {
    const failure = e instanceof AuthError ? e.failure : 'missing_token';
    const meta = new URL(this.metadataPath, this.cfg.publicUrl).toString();
    const err = failure === 'missing_token' ? '' : `error="invalid_token", error_description="${e.message.replace(/["\\\r\n]/g, ' ').slice(0, 200)}", `;
    send(res, 401, { error: failure === 'missing_token' ? 'unauthorized' : 'invalid_token', error_description: e.message }, { 'www-authenticate': `Bearer ${err}resource_metadata="${meta}"` });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // DNS-rebinding protection before anything else: a page in a browser that resolved its own
    // name to this address must not reach the gateway (exact host-name matches, no patterns).
    const origin = typeof req.headers.origin === 'string' ? req.headers.origin : undefined;
    const refused = refuseHost(req.headers.host, origin, this.cfg.allowedHostnames);
    if (refused) return send(res, 403, { jsonrpc: '2.0', id: null, error: { code: -32600, message: `${refused} (gateway allowed_hosts)` } });
    const path = (req.url ?? '/').split('?')[0];
    if (path === this.metadataPath && req.method === 'GET') {
      return send(res, 200, { resource: this.cfg.publicUrl, authorization_servers: [this.cfg.identity.issuer], bearer_methods_supported: ['header'], resource_name: 'Tollgate MCP gateway' });
    }
    if (path !== this.cfg.path) return send(res, 404, { error: 'not_found', error_description: `the MCP endpoint is ${this.cfg.path}` });
    let token: string;
    let identity: Identity;
    try {
      token = bearerToken(req.headers.authorization);
      identity = await this.verifier.verify(token);
    } catch (e) {
      return this.unauthorized(res, e as Error);
    }
    const owner = `${identity.iss}\n${identity.sub}`;
    const sessionId = typeof req.headers['mcp-session-id'] === 'string' ? req.headers['mcp-session-id'] : undefined;
    const body = req.method === 'POST' ? await readJson(req) : undefined;
    let entry = sessionId ? this.sessions.get(sessionId) : undefined;
    if (sessionId && !entry) return send(res, 404, { jsonrpc: '2.0', id: null, error: { code: -32001, message: 'unknown or expired session: initialize a new one' } });
    if (entry && entry.session.owner !== owner) {
      // A session belongs to whoever opened it; another identity can neither use nor end it.
      return send(res, 403, { jsonrpc: '2.0', id: null, error: { code: -32003, message: 'this session belongs to another identity' } });
    }
    if (!entry) {
      if (req.method !== 'POST' || !isInitializeRequest(body)) return send(res, 400, { jsonrpc: '2.0', id: null, error: { code: -32600, message: 'no session: send initialize first' } });
      if (this.sessions.size >= MAX_SESSIONS) this.sweep(true);
      entry = await this.newSession(owner, token);
    }
    entry.session.callerToken = token;
    entry.session.lastSeen = Date.now();
    await entry.transport.handleRequest(req, res, body);
  }

  private async newSession(owner: string, token: string): Promise<{ session: GatewaySession; transport: StreamableHTTPServerTransport }> {
    const session = new GatewaySession(this.cfg, owner, token, this.exchanger, this.indexes, this.log);
    const entry = { session, transport: null as unknown as StreamableHTTPServerTransport };
    entry.transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => { this.sessions.set(id, entry); },
    });
    entry.transport.onclose = () => {
      const id = entry.transport.sessionId;
      if (id) this.sessions.delete(id);
      session.close().catch(() => undefined);
    };
    await session.connect(entry.transport);
    return entry;
  }

  /** Ends idle sessions (all but the newest half when `force`, to stay under the cap). */
  private sweep(force = false): void {
    const now = Date.now();
    const list = [...this.sessions.entries()].sort((a, b) => a[1].session.lastSeen - b[1].session.lastSeen);
    const drop = force ? list.slice(0, Math.ceil(list.length / 2)) : list.filter(([, e]) => now - e.session.lastSeen > IDLE_MS);
    for (const [id, e] of drop) { this.sessions.delete(id); e.transport.close().catch(() => undefined); }
  }

  get sessionCount(): number { return this.sessions.size; }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    for (const e of this.sessions.values()) await e.transport.close().catch(() => undefined);
    this.sessions.clear();
    const emb = this.embedderP ? await this.embedderP : null;
    await emb?.close();
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }
}

/** The issuer's token endpoint, from OIDC discovery (RFC 8414 metadata as a fallback). */
async function discoverTokenEndpoint(issuer: string): Promise<string> {
  const base = issuer.replace(/\/+$/, '');
  for (const url of [`${base}/.well-known/openid-configuration`, `${new URL(base).origin}/.well-known/oauth-authorization-server${new URL(base).pathname.replace(/\/+$/, '')}`]) {
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
      if (!r.ok) continue;
      const doc = await r.json() as { token_endpoint?: unknown };
      if (typeof doc.token_endpoint === 'string') return doc.token_endpoint;
    } catch { /* try the next document */ }
  }
  throw new Error(`cannot find the token endpoint of ${issuer} (no token_endpoint in its discovery documents); set delegation.token_endpoint`);
}
