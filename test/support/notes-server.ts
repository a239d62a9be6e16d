import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

/**
 * A second real MCP server (the SDK's) for tests that need more than the demo server: notes, and
 * a slow counter that reports progress and stops when cancelled.
 */
export class NotesServer {
  readonly notes: string[] = [];
  cancelled = 0;
  private http!: Server;
  private sessions = new Map<string, StreamableHTTPServerTransport>();
  port = 0;

  static async start(port = 0): Promise<NotesServer> {
    const s = new NotesServer();
    s.http = createServer((req, res) => {
      void (async () => {
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        const raw = Buffer.concat(chunks).toString();
        const body = raw ? JSON.parse(raw) : undefined;
        const sid = req.headers['mcp-session-id'] as string | undefined;
        let t = sid ? s.sessions.get(sid) : undefined;
        if (!t) {
          if (sid || !isInitializeRequest(body)) { res.writeHead(sid ? 404 : 400).end(); return; }
          t = await s.session();
        }
        await t.handleRequest(req, res, body);
      })().catch(() => { if (!res.headersSent) res.writeHead(500).end(); });
    });
    await new Promise<void>((r) => s.http.listen(port, '127.0.0.1', r));
    s.port = (s.http.address() as { port: number }).port;
    return s;
  }

  private async session(): Promise<StreamableHTTPServerTransport> {
    const t: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID(), onsessioninitialized: (id) => { this.sessions.set(id, t); } });
    const m = new McpServer({ name: 'notes', version: '1.0.0' });
    m.registerTool('add_note', { description: 'Save a short text note for later.', inputSchema: { text: z.string() }, annotations: { readOnlyHint: false, destructiveHint: false } },
      async ({ text }) => { this.notes.push(text); return { content: [{ type: 'text', text: `saved note ${this.notes.length}` }] }; });
    m.registerTool('list_notes', { description: 'List all saved notes.', inputSchema: {}, annotations: { readOnlyHint: true } },
      async () => ({ content: [{ type: 'text', text: JSON.stringify(this.notes) }] }));
    m.registerTool('count_slowly', { description: 'Count up to n, one step every 50 ms, reporting progress.', inputSchema: { n: z.number().int().min(1).max(1000) }, annotations: { readOnlyHint: true } },
      async ({ n }, extra) => {
        for (let i = 1; i <= n; i++) {
          if (extra.signal.aborted) { this.cancelled++; return { content: [{ type: 'text', text: 'cancelled' }] }; }
          const token = extra._meta?.progressToken;
          if (token !== undefined) await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: i, total: n } });
          await new Promise((r) => setTimeout(r, 50));
        }
        return { content: [{ type: 'text', text: `counted to ${n}` }] };
      });
    await m.connect(t);
    return t;
  }

  async close(): Promise<void> {
    for (const t of this.sessions.values()) await t.close().catch(() => undefined);
    this.sessions.clear();
    this.http.closeAllConnections();
    await new Promise<void>((r) => this.http.close(() => r()));
  }
}
