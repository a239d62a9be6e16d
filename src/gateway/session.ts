import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import type { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  CallToolRequestSchema, CallToolResultSchema, ErrorCode, ListToolsRequestSchema, ListToolsResultSchema, McpError,
  type CallToolResult, type ServerNotification, type ServerRequest, type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { Logger } from '../util/log.js';
import type { ToolEntry } from '../discovery/catalog.js';
import { CALL_TOOL, FIND_TOOL, findToolResult } from '../discovery/optimizer.js';
import type { GatewayConfig } from './config.js';
import type { TokenExchanger } from './delegation.js';
import { qualify, splitQualified } from './names.js';
import type { SearchIndexes } from './search-indexes.js';
import { UpstreamConnection, UpstreamUnavailable } from './upstream.js';

/**
 * One agent's session with the gateway: an MCP server (the SDK's, on the agent's side) whose
 * tools are the governed servers' tools, reached through one upstream session per server with
 * the agent's delegated identity. Every call is judged by the target server's sidecar; the
 * gateway only routes, merges lists and searches what the sidecars let this caller see.
 */

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

const MAX_PAGES = 20;

export class GatewaySession {
  readonly server: Server;
  private readonly upstreams = new Map<string, UpstreamConnection>();
  private listCache: { at: number; tools: Tool[] } | null = null;
  lastSeen = Date.now();

  constructor(
    private readonly cfg: GatewayConfig,
    readonly owner: string,
    public callerToken: string,
    exchanger: TokenExchanger,
    private readonly indexes: SearchIndexes,
    private readonly log: Logger,
  ) {
    for (const s of cfg.servers) {
      this.upstreams.set(s.name, new UpstreamConnection(s, () => this.callerToken, exchanger, () => this.toolsChanged()));
    }
    this.server = new Server({ name: 'tollgate-gateway', version: '0.1.0' }, {
      capabilities: { tools: { listChanged: cfg.mode === 'aggregate' } },
      instructions: cfg.mode === 'optimizer'
        ? 'Tools of several governed MCP servers are reachable here. Use find_tool to discover the tool for a task, then call_tool to call it.'
        : undefined,
    });
    this.server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: cfg.mode === 'optimizer' ? [FIND_TOOL as unknown as Tool, CALL_TOOL as unknown as Tool] : await this.mergedTools() }));
    this.server.setRequestHandler(CallToolRequestSchema, async (req, extra) => this.callTool(req.params.name, req.params.arguments ?? {}, extra));
  }

  async connect(transport: StreamableHTTPServerTransport): Promise<void> {
    await this.server.connect(transport);
  }

  private toolsChanged(): void {
    this.listCache = null;
    if (this.cfg.mode === 'aggregate') this.server.sendToolListChanged().catch(() => undefined);
  }

  /** Every server's tools/list as this caller sees it through its sidecar (policy-filtered), qualified. */
  async mergedTools(): Promise<Tool[]> {
    if (this.listCache && Date.now() - this.listCache.at < this.cfg.list_cache_ms) return this.listCache.tools;
    let complete = true;
    const lists = await Promise.all([...this.upstreams.values()].map(async (u) => {
      try {
        const out: Tool[] = [];
        let cursor: string | undefined;
        for (let page = 0; page < MAX_PAGES; page++) {
          const r = await u.request({ method: 'tools/list', params: cursor ? { cursor } : {} }, ListToolsResultSchema, { timeout: this.cfg.upstream_timeout_ms });
          for (const t of r.tools) out.push({ ...t, name: qualify(u.server.name, t.name) });
          cursor = r.nextCursor;
          if (!cursor) break;
        }
        return out;
      } catch (e) {
        // A server that is down or refuses the listing contributes no tools; the session goes on.
        complete = false;
        this.log.warn({ server: u.server.name, err: (e as Error).message, code: (e as { code?: unknown }).code }, 'tools/list failed; its tools are left out');
        return [];
      }
    }));
    const tools = lists.flat();
    // A partial list is not kept: the next listing asks the missing server again.
    this.listCache = complete ? { at: Date.now(), tools } : null;
    return tools;
  }

  private async callTool(name: string, args: Record<string, unknown>, extra: Extra): Promise<CallToolResult> {
    if (this.cfg.mode === 'optimizer' && name === FIND_TOOL.name) return this.findTool(args);
    if (this.cfg.mode === 'optimizer' && name === CALL_TOOL.name) {
      const target = args.name;
      if (typeof target !== 'string' || !target) throw new McpError(ErrorCode.InvalidParams, 'call_tool needs "name": a tool name returned by find_tool');
      const inner = args.arguments ?? {};
      if (typeof inner !== 'object' || inner === null || Array.isArray(inner)) throw new McpError(ErrorCode.InvalidParams, 'call_tool "arguments" must be an object');
      return this.route(target, inner as Record<string, unknown>, extra);
    }
    return this.route(name, args, extra);
  }

  private async findTool(args: Record<string, unknown>): Promise<CallToolResult> {
    const description = args.description;
    if (typeof description !== 'string' || !description.trim()) throw new McpError(ErrorCode.InvalidParams, 'find_tool needs "description": the task in plain words');
    const keywords = typeof args.keywords === 'string' ? args.keywords : '';
    const k = typeof args.limit === 'number' && Number.isInteger(args.limit) ? Math.min(20, Math.max(1, args.limit)) : this.cfg.optimizer.default_k;
    // Only what the sidecars listed for this caller is searchable: a tool the caller may not call
    // is never found, because its server's policy already hid it from this caller's listing.
    const tools = await this.mergedTools();
    const entries: ToolEntry[] = tools.map((t) => {
      const q = splitQualified(t.name)!;
      return { server: q.server, name: q.tool, description: t.description ?? '', inputSchema: t.inputSchema as Record<string, unknown>, ...(t.annotations ? { annotations: t.annotations as Record<string, unknown> } : {}) };
    });
    const index = await this.indexes.indexFor(entries);
    const hits = await index.search(`${description} ${keywords}`.trim(), { k });
    return findToolResult(hits, (h) => qualify(h.tool.server, h.tool.name));
  }

  private async route(qualified: string, args: Record<string, unknown>, extra: Extra): Promise<CallToolResult> {
    const q = splitQualified(qualified);
    const upstream = q ? this.upstreams.get(q.server) : undefined;
    if (!q || !upstream) {
      throw new McpError(ErrorCode.InvalidParams, `unknown tool "${qualified}": tool names here are <server>__<tool>, with server one of ${[...this.upstreams.keys()].join(', ')}`);
    }
    const progressToken = extra._meta?.progressToken;
    try {
      const result = await upstream.request({ method: 'tools/call', params: { name: q.tool, arguments: args } }, CallToolResultSchema, {
        signal: extra.signal,
        timeout: this.cfg.upstream_timeout_ms,
        resetTimeoutOnProgress: true,
        ...(progressToken !== undefined ? {
          onprogress: (p) => { extra.sendNotification({ method: 'notifications/progress', params: { ...p, progressToken } }).catch(() => undefined); },
        } : {}),
      });
      return result as CallToolResult;
    } catch (e) {
      if (e instanceof UpstreamUnavailable) return { isError: true, content: [{ type: 'text', text: e.message }] };
      // A refusal by the server's policy (or any JSON-RPC error) reaches the agent unchanged:
      // same code, the policy's reasons and decision id in data.
      if (e instanceof McpError) throw e;
      throw new McpError(ErrorCode.InternalError, `calling ${qualified} failed: ${(e as Error).message}`);
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.upstreams.values()].map((u) => u.close()));
    await this.server.close().catch(() => undefined);
  }
}
