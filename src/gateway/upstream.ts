import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { RequestOptions } from '@modelcontextprotocol/sdk/shared/protocol.js';
import {
  CreateMessageRequestSchema, ElicitRequestSchema, ListRootsRequestSchema, LoggingMessageNotificationSchema,
  PromptListChangedNotificationSchema, ResourceListChangedNotificationSchema, ResourceUpdatedNotificationSchema,
  ToolListChangedNotificationSchema, type ClientCapabilities, type Request, type Result, type ServerNotification, type ServerRequest,
} from '@modelcontextprotocol/sdk/types.js';
import type { z } from 'zod';
import type { TokenExchanger } from './delegation.js';
import { limitMessageSize } from './message-limit.js';

/**
 * One gateway session's connection to one governed server, through that server's sidecar, with
 * the caller's delegated token on every HTTP request (fetched fresh when near expiry). Connected
 * on first use; a server that is down is retried after a short pause rather than on every call.
 */

export interface UpstreamServer { name: string; url: string; audience?: string }

/** What an upstream server sends that is not an answer: relayed to the agent by the session. */
export interface UpstreamHooks {
  /** The agent's capabilities, offered to the server as the gateway's own (sampling, elicitation, roots). */
  clientCapabilities(): ClientCapabilities;
  notification(server: string, n: ServerNotification): void;
  /** A server-to-client request (sampling, elicitation, roots) to put to the agent. */
  request(server: string, r: ServerRequest): Promise<Result>;
}

export class UpstreamUnavailable extends Error {
  constructor(readonly server: string, message: string) {
    super(message);
    this.name = 'UpstreamUnavailable';
  }
}

const RETRY_AFTER_MS = 2000;

/** Largest single message (SSE event or JSON body) taken from a server; the stdio bridge has the same bound. */
export const MAX_UPSTREAM_MESSAGE_BYTES = 32 * 1024 * 1024;

export class UpstreamConnection {
  private client: Client | null = null;
  private connecting: Promise<Client> | null = null;
  private downUntil = 0;
  private lastError = '';
  /** Why a client was dropped for a message over the bound: its pending requests fail with this. */
  private readonly oversized = new WeakMap<Client, string>();

  constructor(
    readonly server: UpstreamServer,
    private readonly callerToken: () => string,
    private readonly exchanger: TokenExchanger,
    private readonly hooks: UpstreamHooks,
  ) {}

  private get audience(): string { return this.server.audience ?? this.server.url; }

  private async connect(): Promise<Client> {
    const audience = this.audience;
    const transport = new StreamableHTTPClientTransport(new URL(this.server.url), {
      fetch: async (url, init) => {
        const token = await this.exchanger.tokenFor(this.callerToken(), audience);
        const headers = new Headers(init?.headers);
        headers.set('authorization', `Bearer ${token}`);
        const res = await fetch(url, { ...init, headers });
        if (!res.body) return res;
        const body = limitMessageSize(res.body, MAX_UPSTREAM_MESSAGE_BYTES, () => this.dropOversized(client));
        return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
      },
    });
    const capabilities = this.hooks.clientCapabilities();
    const client: Client = new Client({ name: 'tollgate-gateway', version: '0.1.0' }, { capabilities });
    const name = this.server.name;
    for (const schema of [ToolListChangedNotificationSchema, PromptListChangedNotificationSchema, ResourceListChangedNotificationSchema, ResourceUpdatedNotificationSchema, LoggingMessageNotificationSchema]) {
      client.setNotificationHandler(schema, async (n) => this.hooks.notification(name, n as ServerNotification));
    }
    // Only what the agent can answer is offered to the server, so the server sees the agent's abilities.
    if (capabilities.sampling) client.setRequestHandler(CreateMessageRequestSchema, (r) => this.hooks.request(name, r) as never);
    if (capabilities.elicitation) client.setRequestHandler(ElicitRequestSchema, (r) => this.hooks.request(name, r) as never);
    if (capabilities.roots) client.setRequestHandler(ListRootsRequestSchema, (r) => this.hooks.request(name, r) as never);
    client.onclose = () => { if (this.client === client) this.client = null; };
    await client.connect(transport);
    return client;
  }

  /**
   * A server sent a message over the bound: the stream is failed (its buffer freed) and the
   * session with the server is dropped, so every request waiting on it fails now, naming the
   * server, instead of at the upstream timeout. The next call opens a new session.
   */
  private dropOversized(client: Client): Error {
    const message = `server "${this.server.name}" sent a message over ${MAX_UPSTREAM_MESSAGE_BYTES} bytes; the call was stopped`;
    this.oversized.set(client, message);
    this.lastError = message;
    if (this.client === client) this.client = null;
    setImmediate(() => { client.close().catch(() => undefined); });
    return new Error(message);
  }

  private async get(): Promise<Client> {
    if (this.client) return this.client;
    if (Date.now() < this.downUntil) throw new UpstreamUnavailable(this.server.name, `server "${this.server.name}" is unavailable: ${this.lastError} (retrying shortly)`);
    this.connecting ??= this.connect().then(
      (c) => { this.client = c; return c; },
      (e: Error) => {
        this.downUntil = Date.now() + RETRY_AFTER_MS;
        this.lastError = e.message;
        throw new UpstreamUnavailable(this.server.name, `server "${this.server.name}" is unavailable: ${e.message}`);
      },
    ).finally(() => { this.connecting = null; });
    return this.connecting;
  }

  /**
   * Sends one request. When the server no longer knows our session (it restarted: HTTP 404), the
   * request never ran there, so it is sent once more on a fresh session.
   */
  async request<S extends z.ZodType>(req: Request, schema: S, opts: RequestOptions = {}): Promise<z.infer<S>> {
    for (let attempt = 0; ; attempt++) {
      const client = await this.get();
      try {
        return await client.request(req, schema, opts);
      } catch (e) {
        const oversized = this.oversized.get(client);
        if (oversized) throw new UpstreamUnavailable(this.server.name, oversized);
        const status = e instanceof StreamableHTTPError ? e.code ?? 0 : 0;
        const lost = status === 404;
        // fetch failed (refused, reset), or the sidecar could not reach the server (502/503/504).
        const broken = e instanceof TypeError || status >= 500;
        if (lost || broken) {
          this.client = null;
          await client.close().catch(() => undefined);
          if (lost && attempt === 0) continue;
          this.downUntil = Date.now() + RETRY_AFTER_MS;
          this.lastError = (e as Error).message;
          throw new UpstreamUnavailable(this.server.name, `server "${this.server.name}" is unavailable: ${(e as Error).message}`);
        }
        throw e;
      }
    }
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = null;
    if (c) {
      // End the upstream session too, so the server frees it.
      const t = c.transport as StreamableHTTPClientTransport | undefined;
      await t?.terminateSession().catch(() => undefined);
      await c.close().catch(() => undefined);
    }
  }
}
