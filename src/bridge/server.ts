import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LOOPBACK_HOSTNAMES, refuseHost } from './host-check.js';
import { BridgeSession } from './session.js';
import { BridgeErrorCode, type LaunchSpec } from './types.js';
import { DEFAULT_BODY_LIMITS, isInitializeBody, parseMcpBody } from '../mcp/jsonrpc.js';

export interface BridgeOptions {
  /** The governed server's name. */
  name: string;
  /** Called once per session: each session runs its own process. */
  launch: () => LaunchSpec;
  host?: string;
  port?: number;
  path?: string;
  /** Most concurrent sessions (= server processes); more get 503 (default 32). */
  maxSessions?: number;
  /** Largest request body accepted (default 4 MiB, as Envoy's default buffer). */
  maxBodyBytes?: number;
  /** Host names (no port) the Host and Origin headers may carry (DNS-rebinding protection); default loopback names. */
  allowedHostnames?: string[];
  log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  maxCrashes?: number;
  /** Sessions idle this long are closed with their process (default 15 min): clients often never send DELETE. */
  idleTimeoutMs?: number;
}

class BodyTooLarge extends Error {}

async function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > max) throw new BodyTooLarge(`request body over ${max} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

/**
 * A stdio MCP server offered over Streamable HTTP: POST/GET/DELETE on one path, a session (and a
 * server process) per `initialize`, everything else relayed as is by the SDK's transport.
 */
export class StdioBridge {
  private readonly sessions = new Map<string, BridgeSession>();
  private readonly starting = new Set<BridgeSession>();
  private http!: Server;
  private sweeper: NodeJS.Timeout | null = null;
  port = 0;
  url = '';

  private constructor(private readonly o: BridgeOptions) {}

  static async start(o: BridgeOptions): Promise<StdioBridge> {
    const b = new StdioBridge(o);
    b.http = createServer((req, res) => { b.handle(req, res).catch((e: Error) => b.fail(res, 500, BridgeErrorCode.Unavailable, `bridge error: ${e.message}`)); });
    const host = o.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => { b.http.once('error', reject); b.http.listen(o.port ?? 0, host, resolve); });
    b.port = (b.http.address() as AddressInfo).port;
    b.url = `http://${host}:${b.port}${o.path ?? '/mcp'}`;
    const idle = o.idleTimeoutMs ?? 15 * 60_000;
    b.sweeper = setInterval(() => {
      for (const s of b.sessions.values()) if (s.idleFor(idle)) { b.log('info', 'closing idle session', { server: o.name, session: s.id }); void s.close(); }
    }, Math.min(idle, 30_000));
    b.sweeper.unref();
    return b;
  }

  private log(level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void {
    this.o.log?.(level, msg, fields);
  }

  /** Live sessions, for /healthz and tests. */
  list(): BridgeSession[] { return [...this.sessions.values()]; }

  private fail(res: ServerResponse, status: number, code: number, message: string): void {
    if (res.headersSent) { res.end(); return; }
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code, message } }));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz' && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ server: this.o.name, sessions: this.list().map((s) => ({ state: s.state, restarts: s.restarts, pid: s.pid ?? null })) }));
      return;
    }
    if (path !== (this.o.path ?? '/mcp')) return this.fail(res, 404, BridgeErrorCode.InvalidRequest, `no MCP endpoint at ${path}`);
    const origin = typeof req.headers.origin === 'string' ? req.headers.origin : undefined;
    const refused = refuseHost(req.headers.host, origin, this.o.allowedHostnames ?? LOOPBACK_HOSTNAMES);
    if (refused) return this.fail(res, 403, BridgeErrorCode.InvalidRequest, refused);
    const sid = req.headers['mcp-session-id'];
    let body: unknown;
    if (req.method === 'POST') {
      let raw: Buffer;
      const maxBytes = this.o.maxBodyBytes ?? 4 * 1024 * 1024;
      try { raw = await readBody(req, maxBytes); } catch (e) {
        if (e instanceof BodyTooLarge) return this.fail(res, 413, BridgeErrorCode.InvalidRequest, e.message);
        throw e;
      }
      // The same checks authz makes in the mesh (UTF-8, nesting, batch size, message shape), so the
      // bridge run on its own refuses what the mesh would, before anything reaches the server.
      const parsed = parseMcpBody(raw, { ...DEFAULT_BODY_LIMITS, maxBytes });
      if (!parsed.ok) return this.fail(res, parsed.error.httpStatus, parsed.error.code, parsed.error.message);
      body = parsed.value;
    }
    if (typeof sid === 'string') {
      const s = this.sessions.get(sid);
      if (!s) return this.fail(res, 404, BridgeErrorCode.InvalidRequest, 'unknown or expired MCP session: initialize a new one');
      return s.transport.handleRequest(req, res, body);
    }
    if (req.method !== 'POST' || !isInitializeBody(body)) {
      return this.fail(res, 400, BridgeErrorCode.InvalidRequest, 'no Mcp-Session-Id: the first request of a session must be initialize');
    }
    if (this.sessions.size + this.starting.size >= (this.o.maxSessions ?? 32)) {
      return this.fail(res, 503, BridgeErrorCode.Unavailable, `MCP server "${this.o.name}" is at its session limit (${this.o.maxSessions ?? 32}); close a session or retry later`);
    }
    const s = new BridgeSession({
      name: this.o.name, launch: this.o.launch, maxCrashes: this.o.maxCrashes,
      log: (l, m, f) => this.log(l, m, f),
      onClosed: (x) => { if (x.id) this.sessions.delete(x.id); this.starting.delete(x); },
      onSessionId: (x) => { if (x.id) this.sessions.set(x.id, x); this.starting.delete(x); },
    });
    this.starting.add(s);
    try {
      await s.start();
      await s.transport.handleRequest(req, res, body);
    } catch (e) {
      await s.close();
      throw e;
    } finally {
      this.starting.delete(s);
    }
    // An initialize that never produced a session (bad params, server died at once) leaves nothing behind.
    if (!s.id) await s.close();
  }

  async close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    const all = [...this.sessions.values(), ...this.starting];
    await Promise.all(all.map((s) => s.close()));
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }
}
