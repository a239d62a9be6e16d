import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { CallToolRequestSchema, ListToolsRequestSchema, isInitializeRequest, type Tool } from '@modelcontextprotocol/sdk/types.js';
import { readRecords } from '../../../src/decisionlog/reader.js';
import type { ChainedDecisionRecord } from '../../../src/decisionlog/types.js';
import { selfCommand } from '../../../src/util/self.js';
import { projectRoot } from '../../../src/util/tools.js';

export const tempDir = (prefix: string): string => mkdtempSync(join(tmpdir(), `tollgate-${prefix}-`));

export const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits for something background work brings about (a flush, a sync); fails after `ms`. */
export async function until<T>(probe: () => T | null | undefined | false | Promise<T | null | undefined | false>, what: string, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== null && v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await pause(50);
  }
}

/** Every decision record authz wrote under `<stateDir>/decisions`, in chain order. */
export function decisions(stateDir: string): ChainedDecisionRecord[] {
  const dir = join(stateDir, 'decisions');
  if (!existsSync(dir)) return [];
  return [...readRecords(dir)].map((r) => r.record);
}

/** Runs the tollgate CLI in a child process, exactly as an operator would. */
export function tollgate(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const self = selfCommand();
  return new Promise((resolve) => {
    execFile(self.cmd, [...self.args, ...args], { cwd: projectRoot(), timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** One JSON-RPC message a client received, from the body of a POST. */
export interface Received { id: unknown; result?: unknown; error?: unknown }

/**
 * An MCP SDK client that also keeps every JSON-RPC response it was sent (parsed from the raw
 * bodies, JSON or SSE), so a test can count their tokens exactly as ext_proc does.
 */
export async function recordingClient(url: string, token: string | null): Promise<{ client: Client; received: Received[]; settled: () => Promise<void> }> {
  const received: Received[] = [];
  const reading: Array<Promise<void>> = [];
  const fetcher = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const res = await fetch(input, init);
    // POST bodies end once answered; the GET stream stays open and carries no responses here.
    if ((init?.method ?? 'GET') === 'POST' && res.body) {
      reading.push(res.clone().text().then((text) => { received.push(...messagesOf(text, res.headers.get('content-type') ?? '')); }));
    }
    return res;
  };
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers }, fetch: fetcher });
  const client = new Client({ name: 'tollgate-budget-e2e', version: '1.0.0' });
  await client.connect(transport);
  return { client, received, settled: async () => { await Promise.all(reading); } };
}

/** The JSON-RPC messages of a response body: a JSON value, or the `data:` of each SSE event. */
export function messagesOf(text: string, contentType: string): Received[] {
  const values: unknown[] = [];
  if (contentType.includes('text/event-stream')) {
    for (const event of text.split(/\r?\n\r?\n/)) {
      const data = event.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, '')).join('\n');
      if (data) values.push(JSON.parse(data));
    }
  } else if (text.trim()) {
    values.push(JSON.parse(text));
  }
  return values.flatMap((v) => (Array.isArray(v) ? v : [v])).filter((m): m is Received => typeof m === 'object' && m !== null && ('result' in m || 'error' in m));
}

/** A tools/list page of the paging MCP server: its tools and the cursor of the next page. */
export interface ToolPage { tools: Tool[]; nextCursor?: string }

/**
 * An MCP server (the SDK's low-level Server over Streamable HTTP with sessions, SSE answers)
 * whose tools/list is paginated, as large real servers are: the demo server's is not. Each tool
 * answers with a fixed text.
 */
export class PagingMcpServer {
  readonly calls: string[] = [];
  private readonly sessions = new Map<string, StreamableHTTPServerTransport>();
  private http!: HttpServer;
  port = 0;

  constructor(private readonly pages: Record<string, ToolPage>, private readonly answer: (tool: string) => string) {}

  async start(): Promise<this> {
    this.http = createServer((req, res) => {
      this.handle(req, res).catch((e: Error) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32000, message: e.message } }));
      });
    });
    await new Promise<void>((resolve) => this.http.listen(0, '127.0.0.1', resolve));
    const addr = this.http.address();
    this.port = typeof addr === 'object' && addr ? addr.port : 0;
    return this;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const body: unknown = raw ? JSON.parse(raw) : undefined;
    const sid = req.headers['mcp-session-id'];
    let transport = typeof sid === 'string' ? this.sessions.get(sid) : undefined;
    if (!transport) {
      if (req.method !== 'POST' || !isInitializeRequest(body)) {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32000, message: 'no session' } }));
        return;
      }
      transport = await this.session();
    }
    await transport.handleRequest(req, res, body);
  }

  private async session(): Promise<StreamableHTTPServerTransport> {
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => { this.sessions.set(id, transport); },
    });
    const server = new Server({ name: 'tollgate-paging', version: '1.0.0' }, { capabilities: { tools: {} } });
    server.setRequestHandler(ListToolsRequestSchema, (req) => {
      const page = this.pages[req.params?.cursor ?? ''];
      if (!page) throw new Error(`unknown cursor ${req.params?.cursor}`);
      // _meta rides along so the test can see that members other than `tools` survive filtering.
      return { tools: page.tools, ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}), _meta: { page: req.params?.cursor ?? 'first' } };
    });
    server.setRequestHandler(CallToolRequestSchema, (req) => {
      this.calls.push(req.params.name);
      return { content: [{ type: 'text', text: this.answer(req.params.name) }] };
    });
    await server.connect(transport);
    return transport;
  }

  async close(): Promise<void> {
    for (const t of this.sessions.values()) await t.close().catch(() => undefined);
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }
}
