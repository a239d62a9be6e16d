import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { registerDemoTools, type CallRecord } from './tools.js';

export interface DemoServerOptions {
  host?: string;
  port?: number;
  path?: string;
  /** Answer POSTs with application/json instead of an SSE stream. */
  jsonResponses?: boolean;
}

/**
 * The demo MCP server behind the local mesh: the real SDK's Streamable HTTP transport with
 * sessions, exactly as a production MCP server would run.
 */
export class DemoMcpServer {
  readonly calls: CallRecord[] = [];
  /** Every HTTP request that reached us, with the Authorization header we were given. */
  readonly requests: Array<{ method: string; authorization: string | null; decisionId: string | null }> = [];
  private readonly sessions = new Map<string, StreamableHTTPServerTransport>();
  private http!: Server;
  url = '';
  port = 0;

  private constructor(private readonly opts: Required<DemoServerOptions>) {}

  static async start(opts: DemoServerOptions = {}): Promise<DemoMcpServer> {
    const s = new DemoMcpServer({ host: opts.host ?? '127.0.0.1', port: opts.port ?? 0, path: opts.path ?? '/mcp', jsonResponses: opts.jsonResponses ?? false });
    await s.listen();
    return s;
  }

  private async listen(): Promise<void> {
    this.http = createServer((req, res) => { this.handle(req, res).catch((e: Error) => this.fail(res, 500, e.message)); });
    await new Promise<void>((resolve) => this.http.listen(this.opts.port, this.opts.host, resolve));
    const addr = this.http.address();
    this.port = typeof addr === 'object' && addr ? addr.port : this.opts.port;
    this.url = `http://${this.opts.host}:${this.port}${this.opts.path}`;
  }

  private fail(res: ServerResponse, status: number, message: string): void {
    if (res.headersSent) { res.end(); return; }
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32000, message } }));
  }

  private async readJson(req: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    return raw ? JSON.parse(raw) : undefined;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== this.opts.path) return this.fail(res, 404, `no MCP endpoint at ${path}`);
    const header = (n: string): string | null => { const v = req.headers[n]; return typeof v === 'string' ? v : null; };
    this.requests.push({ method: req.method ?? '', authorization: header('authorization'), decisionId: header('x-tollgate-decision-id') });
    const sessionId = header('mcp-session-id');
    const body = req.method === 'POST' ? await this.readJson(req) : undefined;
    let transport = sessionId ? this.sessions.get(sessionId) : undefined;
    if (!transport) {
      if (req.method !== 'POST' || !isInitializeRequest(body)) {
        return this.fail(res, sessionId ? 404 : 400, sessionId ? 'unknown session' : 'no session: send initialize first');
      }
      transport = await this.newSession(header('authorization'));
    }
    await transport.handleRequest(req, res, body);
  }

  private async newSession(authorization: string | null): Promise<StreamableHTTPServerTransport> {
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      enableJsonResponse: this.opts.jsonResponses,
      onsessioninitialized: (id) => { this.sessions.set(id, transport); },
    });
    transport.onclose = () => { if (transport.sessionId) this.sessions.delete(transport.sessionId); };
    const server = new McpServer({ name: 'tollgate-demo', version: '0.1.0' });
    registerDemoTools(server, (tool, args) => this.calls.push({ tool, args, authorization, at: new Date().toISOString() }));
    await server.connect(transport);
    return transport;
  }

  async close(): Promise<void> {
    for (const t of this.sessions.values()) await t.close().catch(() => undefined);
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }
}
