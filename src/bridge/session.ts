import { randomUUID } from 'node:crypto';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { JSONRPCMessage, RequestId } from '@modelcontextprotocol/sdk/types.js';
import { BoundedEventStore } from './event-store.js';
import { InFlight, isNotification, isRequest, isResponse } from './routing.js';
import { StdioChild } from './stdio-child.js';
import { BridgeErrorCode, type LaunchSpec } from './types.js';

export type SessionState = 'starting' | 'ready' | 'restarting' | 'failed' | 'closed';

export interface SessionOptions {
  /** Server name, for messages ("MCP server \"fs\" …"). */
  name: string;
  launch: () => LaunchSpec;
  log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  onClosed: (s: BridgeSession) => void;
  /** Called as soon as the session has its id (before the client can use it). */
  onSessionId: (s: BridgeSession) => void;
  /** Crashes within crashWindowMs that make the session give up (default 5 in 60 s). */
  maxCrashes?: number;
  crashWindowMs?: number;
  /** How long a restarted server may take to answer the replayed initialize. */
  initTimeoutMs?: number;
}

const REPLAY_ID_PREFIX = 'tollgate-bridge-replay-';

/**
 * One MCP session: the SDK's Streamable HTTP server transport towards the client, one stdio
 * server process behind it. A stdio server serves exactly one client, so each session gets its own
 * process. If the process dies, every open request gets a clear error at once, the process is
 * restarted and the session's initialize is replayed, so the client's session survives.
 */
export class BridgeSession {
  readonly transport: StreamableHTTPServerTransport;
  state: SessionState = 'starting';
  private child: StdioChild | null = null;
  private readonly inflight = new InFlight();
  private initRequest: (JSONRPCMessage & { id: RequestId; method: string }) | null = null;
  private initializedSeen = false;
  private crashes: number[] = [];
  private replays = 0;
  private replayPending: { id: string; timer: NodeJS.Timeout } | null = null;
  private restartTimer: NodeJS.Timeout | null = null;
  /** Last message either way (Date.now()), for idle expiry. */
  lastActivity = Date.now();
  /** Restarts so far (tests and `/healthz` read it). */
  restarts = 0;
  id: string | undefined;

  constructor(private readonly o: SessionOptions) {
    this.transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      eventStore: new BoundedEventStore(),
      onsessioninitialized: (sid) => { this.id = sid; o.onSessionId(this); },
    });
    this.transport.onmessage = (m) => this.fromClient(m);
    this.transport.onclose = () => { void this.close(); };
    this.transport.onerror = (e) => o.log('warn', 'transport error', { server: o.name, session: this.id, error: e.message });
  }

  async start(): Promise<void> {
    await this.transport.start();
    this.spawn();
    this.state = 'ready';
  }

  get pid(): number | undefined { return this.child?.pid; }

  private spawn(): void {
    const spec = this.o.launch();
    const child: StdioChild = new StdioChild(spec, {
      message: (m) => { if (this.child === child) this.fromServer(m); },
      noise: (line) => this.o.log('info', 'server stdout (not JSON-RPC)', { server: this.o.name, line: line.slice(0, 500) }),
      exit: (code, signal) => { if (this.child === child) this.onExit(child, code, signal); },
    });
    this.child = child;
    this.o.log('info', 'server process started', { server: this.o.name, session: this.id, pid: child.pid, source: spec.label });
  }

  private reply(id: RequestId, message: string, data: Record<string, unknown> = {}): void {
    const err: JSONRPCMessage = { jsonrpc: '2.0', id, error: { code: BridgeErrorCode.Unavailable, message, data: { server: this.o.name, ...data } } };
    this.transport.send(err, { relatedRequestId: id }).catch(() => undefined);
  }

  /** Idle: nothing in flight and no message either way for ms. */
  idleFor(ms: number, now = Date.now()): boolean { return this.inflight.size === 0 && now - this.lastActivity >= ms; }

  private fromClient(m: JSONRPCMessage): void {
    this.lastActivity = Date.now();
    if (isRequest(m)) {
      if (m.method === 'initialize') this.initRequest = structuredClone(m);
      if (this.state === 'restarting') {
        this.reply(m.id, `MCP server "${this.o.name}" is restarting after a crash; retry in a moment`, { reason: 'restarting' });
        return;
      }
      if (this.state !== 'ready' || !this.child) {
        this.reply(m.id, `MCP server "${this.o.name}" is not available (${this.state}); open a new session`, { reason: this.state });
        return;
      }
      this.inflight.add(m.id, m.params);
      if (!this.child.send(m)) {
        this.inflight.remove(m.id);
        this.reply(m.id, `MCP server "${this.o.name}" is not running; retry in a moment`, { reason: 'not_running' });
      }
      return;
    }
    if (isNotification(m) && m.method === 'notifications/initialized') this.initializedSeen = true;
    if (isNotification(m) && m.method === 'notifications/cancelled') this.onCancelled(m.params);
    // Notifications (cancellation included) and answers to the server's own requests pass as they are.
    if (this.state === 'ready') this.child?.send(m);
  }

  /**
   * The client gave up on a request: the server will not answer it (MCP: a cancelled request gets
   * no response), so it is no longer in flight, and its HTTP stream is ended with an error the
   * client ignores. Otherwise the session looked busy forever (never expired) and server messages
   * meant for the standalone stream went to the dead request.
   */
  private onCancelled(params: Record<string, unknown> | undefined): void {
    const id = params?.requestId;
    if ((typeof id !== 'string' && typeof id !== 'number') || !this.inflight.remove(id)) return;
    const err: JSONRPCMessage = { jsonrpc: '2.0', id, error: { code: BridgeErrorCode.RequestCancelled, message: 'request cancelled by the client' } };
    this.transport.send(err, { relatedRequestId: id }).catch(() => undefined);
  }


  private fromServer(m: JSONRPCMessage): void {
    this.lastActivity = Date.now();
    if (this.replayPending && isResponse(m) && m.id === this.replayPending.id) {
      this.onReplayed(m);
      return;
    }
    const related = this.inflight.relatedTo(m);
    if (isResponse(m)) {
      if (!this.inflight.remove(m.id)) return; // cancelled by the client, or not ours: nobody waits for it
    }
    this.transport.send(m, related === undefined ? undefined : { relatedRequestId: related }).catch((e: Error) => {
      this.o.log('warn', 'could not deliver a server message', { server: this.o.name, session: this.id, error: e.message });
    });
  }

  private onExit(child: StdioChild, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.state === 'closed') return;
    const how = signal ? `signal ${signal}` : `code ${code}`;
    this.o.log('error', 'server process exited', { server: this.o.name, session: this.id, pid: child.pid, exit: how, stderr_tail: child.stderr.slice(-2000) });
    for (const id of this.inflight.drain()) {
      this.reply(id, `MCP server "${this.o.name}" exited (${how}) while handling this request; Tollgate is restarting it: retry the call`, { reason: 'server_exited' });
    }
    if (this.replayPending) { clearTimeout(this.replayPending.timer); this.replayPending = null; }
    const now = Date.now();
    const window = this.o.crashWindowMs ?? 60_000;
    this.crashes = [...this.crashes.filter((t) => now - t < window), now];
    if (this.crashes.length >= (this.o.maxCrashes ?? 5)) {
      this.state = 'failed';
      this.o.log('error', 'server keeps crashing: giving up on this session', { server: this.o.name, session: this.id, crashes: this.crashes.length });
      return;
    }
    this.state = 'restarting';
    const delay = Math.min(200 * 2 ** (this.crashes.length - 1), 5000);
    this.restartTimer = setTimeout(() => { this.restartTimer = null; this.restart(); }, delay);
  }

  private restart(): void {
    if (this.state !== 'restarting') return;
    this.restarts++;
    this.spawn();
    if (!this.initRequest) { this.state = 'ready'; return; }
    // Replay the session's own initialize, under an id no client uses, and swallow the answer.
    const id = `${REPLAY_ID_PREFIX}${++this.replays}`;
    const timer = setTimeout(() => {
      this.o.log('error', 'restarted server did not answer initialize', { server: this.o.name, session: this.id });
      this.child?.kill('SIGKILL');
    }, this.o.initTimeoutMs ?? 30_000);
    this.replayPending = { id, timer };
    this.child!.send({ ...this.initRequest, id } as JSONRPCMessage);
  }

  private onReplayed(m: JSONRPCMessage): void {
    clearTimeout(this.replayPending!.timer);
    this.replayPending = null;
    if ('error' in m) {
      this.o.log('error', 'restarted server refused the replayed initialize', { server: this.o.name, session: this.id });
      this.child?.kill('SIGKILL');
      return;
    }
    if (this.initializedSeen) this.child!.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    this.state = 'ready';
    this.o.log('info', 'server restarted and re-initialized', { server: this.o.name, session: this.id, restarts: this.restarts });
  }

  /** Test hook and operator action: kill the server process as a crash would. */
  crashForTest(): void { this.child?.kill('SIGKILL'); }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (this.restartTimer) clearTimeout(this.restartTimer);
    if (this.replayPending) clearTimeout(this.replayPending.timer);
    const child = this.child;
    this.child = null;
    await child?.stop().catch(() => undefined);
    await this.transport.close().catch(() => undefined);
    this.o.onClosed(this);
  }
}
