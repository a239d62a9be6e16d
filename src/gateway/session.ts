import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import type { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { RequestHandlerExtra, RequestOptions } from '@modelcontextprotocol/sdk/shared/protocol.js';
import {
  CallToolRequestSchema, CallToolResultSchema, CompleteRequestSchema, CompleteResultSchema, CreateMessageResultSchema,
  ElicitResultSchema, EmptyResultSchema, ErrorCode, GetPromptRequestSchema, GetPromptResultSchema, ListPromptsRequestSchema,
  ListPromptsResultSchema, ListResourcesRequestSchema, ListResourcesResultSchema, ListResourceTemplatesRequestSchema,
  ListResourceTemplatesResultSchema, ListRootsResultSchema, ListToolsRequestSchema, ListToolsResultSchema, McpError,
  ReadResourceRequestSchema, ReadResourceResultSchema, SetLevelRequestSchema, SubscribeRequestSchema, UnsubscribeRequestSchema,
  type CallToolResult, type Prompt, type Request, type Resource, type ResourceTemplate, type Result, type ServerNotification,
  type ServerRequest, type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import type { z } from 'zod';
import type { Logger } from '../util/log.js';
import type { ToolEntry } from '../discovery/catalog.js';
import { CALL_TOOL, FIND_TOOL, findToolResult } from '../discovery/optimizer.js';
import type { GatewayConfig } from './config.js';
import type { TokenExchanger } from './delegation.js';
import { qualify, splitQualified } from './names.js';
import type { SearchIndexes } from './search-indexes.js';
import { UpstreamConnection, UpstreamUnavailable, type UpstreamHooks } from './upstream.js';

/**
 * One agent's session with the gateway: an MCP server (the SDK's, on the agent's side) in front
 * of one upstream session per governed server, each with the agent's delegated identity. Every
 * request is judged by the target server's sidecar; the gateway routes, merges lists, relays what
 * servers send back (progress, logs, sampling, elicitation, roots) and searches what the sidecars
 * let this caller see.
 */

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

const MAX_PAGES = 20;

interface Merged { at: number; items: unknown[]; owners: Map<string, string>; complete: boolean }

export class GatewaySession {
  readonly server: Server;
  private readonly upstreams = new Map<string, UpstreamConnection>();
  private readonly merged = new Map<string, Merged>();
  /** The agent request each server is working on now: what it sends back goes on that request's stream. */
  private readonly working = new Map<string, Extra>();
  lastSeen = Date.now();

  constructor(
    private readonly cfg: GatewayConfig,
    readonly owner: string,
    public callerToken: string,
    exchanger: TokenExchanger,
    private readonly indexes: SearchIndexes,
    private readonly log: Logger,
  ) {
    const hooks: UpstreamHooks = {
      clientCapabilities: () => {
        const c = this.server.getClientCapabilities() ?? {};
        return { ...(c.sampling ? { sampling: c.sampling } : {}), ...(c.elicitation ? { elicitation: c.elicitation } : {}), ...(c.roots ? { roots: c.roots } : {}) };
      },
      notification: (name, n) => this.relayNotification(name, n),
      request: (name, r) => this.relayRequest(name, r),
    };
    for (const s of cfg.servers) this.upstreams.set(s.name, new UpstreamConnection(s, () => this.callerToken, exchanger, hooks));
    const optimizer = cfg.mode === 'optimizer';
    this.server = new Server({ name: 'tollgate-gateway', version: '0.1.0' }, {
      capabilities: {
        tools: { listChanged: !optimizer }, prompts: { listChanged: true }, resources: { subscribe: true, listChanged: true },
        logging: {}, completions: {},
      },
      instructions: optimizer ? 'Tools of several governed MCP servers are reachable here. Use find_tool to discover the tool for a task, then call_tool to call it.' : undefined,
    });
    const s = this.server;
    s.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: optimizer ? [FIND_TOOL as unknown as Tool, CALL_TOOL as unknown as Tool] : await this.mergedTools() }));
    s.setRequestHandler(CallToolRequestSchema, async (req, extra) => this.callTool(req.params.name, req.params.arguments ?? {}, extra));
    s.setRequestHandler(ListPromptsRequestSchema, async () => ({ prompts: (await this.list('prompts')).items as Prompt[] }));
    s.setRequestHandler(GetPromptRequestSchema, async (req, extra) => {
      const { server, name } = await this.ownerOf('prompts', req.params.name);
      return this.forward(server, { method: 'prompts/get', params: { ...req.params, name } }, GetPromptResultSchema, extra);
    });
    s.setRequestHandler(ListResourcesRequestSchema, async () => ({ resources: (await this.list('resources')).items as Resource[] }));
    s.setRequestHandler(ListResourceTemplatesRequestSchema, async () => ({ resourceTemplates: (await this.list('resourceTemplates')).items as ResourceTemplate[] }));
    s.setRequestHandler(ReadResourceRequestSchema, async (req, extra) => this.forward(await this.resourceOwner(req.params.uri), { method: 'resources/read', params: req.params }, ReadResourceResultSchema, extra));
    s.setRequestHandler(SubscribeRequestSchema, async (req, extra) => this.forward(await this.resourceOwner(req.params.uri), { method: 'resources/subscribe', params: req.params }, EmptyResultSchema, extra));
    s.setRequestHandler(UnsubscribeRequestSchema, async (req, extra) => this.forward(await this.resourceOwner(req.params.uri), { method: 'resources/unsubscribe', params: req.params }, EmptyResultSchema, extra));
    s.setRequestHandler(CompleteRequestSchema, async (req, extra) => {
      const ref = req.params.ref;
      if (ref.type === 'ref/prompt') {
        const { server, name } = await this.ownerOf('prompts', ref.name);
        return this.forward(server, { method: 'completion/complete', params: { ...req.params, ref: { ...ref, name } } }, CompleteResultSchema, extra);
      }
      return this.forward(await this.resourceOwner(ref.uri), { method: 'completion/complete', params: req.params }, CompleteResultSchema, extra);
    });
    s.setRequestHandler(SetLevelRequestSchema, async (req, extra) => {
      await Promise.all([...this.upstreams.keys()].map((n) => this.forward(n, { method: 'logging/setLevel', params: req.params }, EmptyResultSchema, extra).catch(() => undefined)));
      return {};
    });
  }

  async connect(transport: StreamableHTTPServerTransport): Promise<void> {
    await this.server.connect(transport);
  }

  private prefixed(server: string): boolean {
    return this.cfg.servers.find((s) => s.name === server)?.prefix ?? true;
  }

  // --- what servers send back ------------------------------------------------------------------

  private relayNotification(server: string, n: ServerNotification): void {
    const send = (m: ServerNotification): void => {
      const extra = this.working.get(server);
      (extra ? extra.sendNotification(m) : this.server.notification(m)).catch(() => undefined);
    };
    switch (n.method) {
      case 'notifications/tools/list_changed': this.merged.delete('tools'); if (this.cfg.mode === 'aggregate') send(n); return;
      case 'notifications/prompts/list_changed': this.merged.delete('prompts'); send(n); return;
      case 'notifications/resources/list_changed': this.merged.delete('resources'); this.merged.delete('resourceTemplates'); send(n); return;
      default: send(n);
    }
  }

  private relayRequest(server: string, r: ServerRequest): Promise<Result> {
    const schema = r.method === 'sampling/createMessage' ? CreateMessageResultSchema : r.method === 'elicitation/create' ? ElicitResultSchema : ListRootsResultSchema;
    const extra = this.working.get(server);
    // Asked while serving one of the agent's requests: ask on that request's stream, as the server did.
    return extra ? extra.sendRequest(r, schema as z.ZodType<Result>) : this.server.request(r, schema as z.ZodType<Result>);
  }

  // --- lists -----------------------------------------------------------------------------------

  /** Every server's list of `kind` as this caller sees it through its sidecar (policy-filtered). */
  private async list(kind: 'tools' | 'prompts' | 'resources' | 'resourceTemplates'): Promise<Merged> {
    const hit = this.merged.get(kind);
    if (hit && hit.complete && Date.now() - hit.at < this.cfg.list_cache_ms) return hit;
    const method = { tools: 'tools/list', prompts: 'prompts/list', resources: 'resources/list', resourceTemplates: 'resources/templates/list' }[kind];
    const schema = { tools: ListToolsResultSchema, prompts: ListPromptsResultSchema, resources: ListResourcesResultSchema, resourceTemplates: ListResourceTemplatesResultSchema }[kind];
    let complete = true;
    const owners = new Map<string, string>();
    const lists = await Promise.all([...this.upstreams.values()].map(async (u) => {
      const out: unknown[] = [];
      try {
        let cursor: string | undefined;
        for (let page = 0; page < MAX_PAGES; page++) {
          const r = await u.request({ method, params: cursor ? { cursor } : {} }, schema as z.ZodType<Record<string, unknown> & { nextCursor?: string }>, { timeout: this.cfg.upstream_timeout_ms });
          for (const item of (r[kind] as unknown[] | undefined) ?? []) out.push(item);
          cursor = r.nextCursor;
          if (!cursor) break;
        }
      } catch (e) {
        // A server without this capability answers "method not found": it simply has none.
        if (e instanceof McpError && e.code === ErrorCode.MethodNotFound) return { u, out };
        // A server that is down or refuses the listing contributes nothing; the session goes on.
        complete = false;
        this.log.warn({ server: u.server.name, list: method, err: (e as Error).message }, 'list failed; its items are left out');
      }
      return { u, out };
    }));
    const items: unknown[] = [];
    for (const { u, out } of lists) {
      for (const item of out) {
        const rec = item as Record<string, unknown>;
        const key = kind === 'resources' ? String(rec.uri) : kind === 'resourceTemplates' ? String(rec.uriTemplate) : String(rec.name);
        const named = (kind === 'tools' || kind === 'prompts') && this.prefixed(u.server.name) ? { ...rec, name: qualify(u.server.name, key) } : rec;
        const outKey = (kind === 'tools' || kind === 'prompts') ? String(named.name) : key;
        // Unprefixed names can collide: the first server in the config keeps the name.
        if (owners.has(outKey)) { this.log.warn({ server: u.server.name, [kind]: outKey }, 'name already offered by another server; left out'); continue; }
        owners.set(outKey, u.server.name);
        items.push(named);
      }
    }
    const m: Merged = { at: Date.now(), items, owners, complete };
    this.merged.set(kind, m);
    return m;
  }

  async mergedTools(): Promise<Tool[]> {
    return (await this.list('tools')).items as Tool[];
  }

  /** Which server owns a tool or prompt name as the agent sees it, and its name there. */
  private async ownerOf(kind: 'tools' | 'prompts', agentName: string): Promise<{ server: string; name: string }> {
    const q = splitQualified(agentName);
    if (q && this.upstreams.has(q.server) && this.prefixed(q.server)) return { server: q.server, name: q.tool };
    for (const fresh of [false, true]) {
      const m = fresh || !this.merged.get(kind) ? await this.list(kind) : this.merged.get(kind)!;
      const server = m.owners.get(agentName);
      if (server && !this.prefixed(server)) return { server, name: agentName };
      if (fresh) break;
    }
    const what = kind === 'tools' ? 'tool' : 'prompt';
    throw new McpError(ErrorCode.InvalidParams, `unknown ${what} "${agentName}": names here are <server>__<name>, with server one of ${[...this.upstreams.keys()].join(', ')}`);
  }

  /** The server a resource URI belongs to: by its listings, else by its templates' literal prefixes. */
  private async resourceOwner(uri: string): Promise<string> {
    const known = (await this.list('resources')).owners.get(uri);
    if (known) return known;
    const templates = await this.list('resourceTemplates');
    for (const [tpl, server] of templates.owners) {
      const brace = tpl.indexOf('{');
      const literal = brace < 0 ? tpl : tpl.slice(0, brace);
      if (literal && uri.startsWith(literal)) return server;
    }
    if (this.upstreams.size === 1) return [...this.upstreams.keys()][0]!;
    throw new McpError(ErrorCode.InvalidParams, `unknown resource "${uri}": no server lists it or a template for it`);
  }

  // --- calls -----------------------------------------------------------------------------------

  private async callTool(name: string, args: Record<string, unknown>, extra: Extra): Promise<CallToolResult> {
    if (this.cfg.mode === 'optimizer' && name === FIND_TOOL.name) return this.findTool(args);
    if (this.cfg.mode === 'optimizer' && name === CALL_TOOL.name) {
      const target = args.name;
      if (typeof target !== 'string' || !target) throw new McpError(ErrorCode.InvalidParams, 'call_tool needs "name": a tool name returned by find_tool');
      const inner = args.arguments ?? {};
      if (typeof inner !== 'object' || inner === null || Array.isArray(inner)) throw new McpError(ErrorCode.InvalidParams, 'call_tool "arguments" must be an object');
      return this.callOne(target, inner as Record<string, unknown>, extra);
    }
    return this.callOne(name, args, extra);
  }

  private async callOne(agentName: string, args: Record<string, unknown>, extra: Extra): Promise<CallToolResult> {
    const { server, name } = await this.ownerOf('tools', agentName);
    try {
      return await this.forward(server, { method: 'tools/call', params: { name, arguments: args } }, CallToolResultSchema, extra) as CallToolResult;
    } catch (e) {
      // A down server fails its own tool as a tool error the agent can read, not the session.
      if (e instanceof UpstreamUnavailable) return { isError: true, content: [{ type: 'text', text: e.message }] };
      throw e;
    }
  }

  private async findTool(args: Record<string, unknown>): Promise<CallToolResult> {
    const description = args.description;
    if (typeof description !== 'string' || !description.trim()) throw new McpError(ErrorCode.InvalidParams, 'find_tool needs "description": the task in plain words');
    const keywords = typeof args.keywords === 'string' ? args.keywords : '';
    const k = typeof args.limit === 'number' && Number.isInteger(args.limit) ? Math.min(20, Math.max(1, args.limit)) : this.cfg.optimizer.default_k;
    // Only what the sidecars listed for this caller is searchable: a tool the caller may not call
    // is never found, because its server's policy already hid it from this caller's listing.
    const m = await this.list('tools');
    const entries: ToolEntry[] = (m.items as Tool[]).map((t) => {
      const server = m.owners.get(t.name)!;
      return { server, name: t.name, description: t.description ?? '', inputSchema: t.inputSchema as Record<string, unknown>, ...(t.annotations ? { annotations: t.annotations as Record<string, unknown> } : {}) };
    });
    const index = await this.indexes.indexFor(entries);
    const hits = await index.search(`${description} ${keywords}`.trim(), { k });
    return findToolResult(hits, (h) => h.tool.name);
  }

  /**
   * One request to one server, with the agent's cancellation and progress attached. A refusal by
   * the server's policy (any JSON-RPC error) reaches the agent unchanged: code, reasons, decision id.
   */
  private async forward<S extends z.ZodType>(server: string, req: Request, schema: S, extra: Extra): Promise<z.infer<S>> {
    const upstream = this.upstreams.get(server)!;
    const progressToken = extra._meta?.progressToken;
    const opts: RequestOptions = {
      signal: extra.signal, timeout: this.cfg.upstream_timeout_ms, resetTimeoutOnProgress: true,
      ...(progressToken !== undefined ? { onprogress: (p) => { extra.sendNotification({ method: 'notifications/progress', params: { ...p, progressToken } }).catch(() => undefined); } } : {}),
    };
    this.working.set(server, extra);
    try {
      return await upstream.request(req, schema, opts);
    } catch (e) {
      if (e instanceof UpstreamUnavailable || e instanceof McpError) throw e;
      throw new McpError(ErrorCode.InternalError, `${req.method} on server "${server}" failed: ${(e as Error).message}`);
    } finally {
      if (this.working.get(server) === extra) this.working.delete(server);
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.upstreams.values()].map((u) => u.close()));
    await this.server.close().catch(() => undefined);
  }
}
