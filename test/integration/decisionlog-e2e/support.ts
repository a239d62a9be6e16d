import { strict as assert } from 'node:assert';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogsCommand } from '../../../src/cli/logs.js';
import { PUBLIC_KEYS_FILE } from '../../../src/decisionlog/files.js';
import { readEntriesOfFiles, readRecords, type LoggedEntry } from '../../../src/decisionlog/reader.js';
import { listLogFiles } from '../../../src/decisionlog/files.js';
import type { ChainedDecisionRecord } from '../../../src/decisionlog/types.js';
import { LocalMesh } from '../../../src/mesh/local.js';
import type { StatusDoc } from '../../../src/metrics/status.js';
import { rawPost } from '../../support/mcp-client.js';

/**
 * Shared pieces of the decision-log end-to-end tests (issue 3, "Done when"): a raw JSON-RPC MCP
 * session that classifies every answer by who gave it, a bounded load driver, and readers for
 * the log authz wrote.
 */

export const PROTOCOL_VERSION = '2025-06-18';
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

export interface TestMesh {
  mesh: LocalMesh;
  state: string;
  /** Where authz writes its log: `--state DIR` puts it in DIR/decisions. */
  logDir: string;
  /** Scratch space outside the state dir (e.g. a copy of the public key kept "elsewhere"). */
  scratch: string;
  dispose(): Promise<void>;
}

export async function startMesh(prefix: string, authzArgs: string[] = []): Promise<TestMesh> {
  const state = mkdtempSync(join(tmpdir(), `tollgate-${prefix}-`));
  const scratch = mkdtempSync(join(tmpdir(), `tollgate-${prefix}-scratch-`));
  let mesh: LocalMesh;
  try {
    mesh = await LocalMesh.start({
      policies: 'policies', stateDir: state, ports: { envoy: 0, envoyAdmin: 0, authz: 0, issuer: 0 }, authzArgs,
      // A Check slowed past Envoy's deadline by a busy shared machine would be refused by Envoy
      // and look like an outage; a dead authz is still noticed at once (connection refused).
      authzTimeoutMs: 10_000,
      echo: process.env.TOLLGATE_TEST_ECHO === '1',
    });
  } catch (e) {
    rmSync(state, { recursive: true, force: true });
    rmSync(scratch, { recursive: true, force: true });
    throw e;
  }
  return {
    mesh, state, scratch, logDir: join(state, 'decisions'),
    async dispose() {
      await mesh.stop();
      rmSync(state, { recursive: true, force: true });
      rmSync(scratch, { recursive: true, force: true });
    },
  };
}

/**
 * Copies the checkpoint public key out of the log directory, as an operator would on day one:
 * verifying against a key kept apart from the log is what makes a forged checkpoint detectable.
 */
export function keepPublicKey(t: TestMesh): string {
  const copy = join(t.scratch, 'decision-log-public.jwks');
  copyFileSync(join(t.logDir, PUBLIC_KEYS_FILE), copy);
  return copy;
}

/** Who answered one request, judged from what the client received. */
export type Outcome =
  /** Authz allowed it and the MCP server's result came back. */
  | { kind: 'allowed'; rpcId: string; status: number }
  /** Authz refused it (policy or before policy): a JSON-RPC error naming the decision. */
  | { kind: 'denied'; rpcId: string; status: number; decisionId: string; code: number }
  /** Envoy's own local reply (authz unreachable): no JSON-RPC body. */
  | { kind: 'refused'; rpcId: string; status: number; body: string; decisionHeader: string | null }
  /** The exchange broke off (e.g. a response stream cut when authz died under ext_proc). */
  | { kind: 'failed'; rpcId: string; error: string }
  /** Anything else: the test fails on these, showing them. */
  | { kind: 'unexpected'; rpcId: string; status: number; body: string };

interface RpcMessage { id?: unknown; result?: unknown; error?: { code?: unknown; data?: { decision_id?: unknown } } }

function messagesOf(contentType: string, text: string): RpcMessage[] {
  const parse = (s: string): RpcMessage[] => {
    try {
      const v = JSON.parse(s) as unknown;
      return (Array.isArray(v) ? v : [v]).filter((m): m is RpcMessage => typeof m === 'object' && m !== null);
    } catch {
      return [];
    }
  };
  if (contentType.includes('text/event-stream')) {
    return text.split('\n').filter((l) => l.startsWith('data:')).flatMap((l) => parse(l.slice(5).trim()));
  }
  return parse(text);
}

/** A Streamable HTTP MCP session spoken with plain fetch, so every answer can be inspected. */
export class RawSession {
  private constructor(readonly url: string, readonly token: string, readonly sessionId: string) {}

  static async open(url: string, token: string, clientName: string): Promise<RawSession> {
    const auth = { authorization: `Bearer ${token}` };
    const init = await rawPost(url, JSON.stringify({
      jsonrpc: '2.0', id: `init-${clientName}`, method: 'initialize',
      params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: clientName, version: '1.0.0' } },
    }), auth);
    const sessionId = init.headers.get('mcp-session-id');
    assert.ok(init.status === 200 && sessionId, `initialize failed: ${init.status} ${init.text}`);
    const s = new RawSession(url, token, sessionId);
    const note = await rawPost(url, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), s.headers());
    assert.equal(note.status, 202, `notifications/initialized: ${note.status} ${note.text}`);
    return s;
  }

  headers(token: string = this.token): Record<string, string> {
    return { authorization: `Bearer ${token}`, 'mcp-session-id': this.sessionId, 'mcp-protocol-version': PROTOCOL_VERSION };
  }

  /** One tools/call; `token` overrides the session's (to send a bad one). */
  call(rpcId: string, tool: string, args: Record<string, unknown>, token?: string): Promise<Outcome> {
    return this.post(rpcId, JSON.stringify({ jsonrpc: '2.0', id: rpcId, method: 'tools/call', params: { name: tool, arguments: args } }), token);
  }

  /** Any body (e.g. malformed JSON, whose refusal cannot echo an id); `rpcId` labels the outcome. */
  async post(rpcId: string, body: string, token?: string): Promise<Outcome> {
    let res: Awaited<ReturnType<typeof rawPost>>;
    try {
      res = await rawPost(this.url, body, this.headers(token));
    } catch (e) {
      return { kind: 'failed', rpcId, error: (e as Error).message };
    }
    const header = res.headers.get('x-tollgate-decision-id');
    const msgs = messagesOf(res.headers.get('content-type') ?? '', res.text);
    // A refusal of a body that could not be parsed answers with id null.
    const mine = msgs.find((m) => m.id === rpcId) ?? (msgs.length === 1 && msgs[0]!.id === null ? msgs[0] : undefined);
    if (res.status === 200 && mine && mine.result !== undefined) return { kind: 'allowed', rpcId, status: res.status };
    const err = mine?.error;
    const decisionId = err?.data?.decision_id;
    if (err && typeof decisionId === 'string' && typeof err.code === 'number') {
      // Authz's denials name the decision twice (body and header); they must agree.
      assert.equal(header, decisionId, `decision id header and body differ for ${rpcId}`);
      return { kind: 'denied', rpcId, status: res.status, decisionId, code: err.code };
    }
    if (res.status >= 500 && msgs.length === 0) return { kind: 'refused', rpcId, status: res.status, body: res.text, decisionHeader: header };
    return { kind: 'unexpected', rpcId, status: res.status, body: res.text.slice(0, 500) };
  }
}

/** True if an Envoy refusal names a decision anywhere (it must not: authz never saw it). */
export function carriesDecisionId(o: Extract<Outcome, { kind: 'refused' }>): boolean {
  return o.decisionHeader !== null || UUID.test(o.body);
}

/** One request of a worker: its n-th (from 0). */
export type Step = (n: number) => Promise<Outcome>;

/**
 * A bounded load: each worker sends requests one after another until stop() or its cap. After an
 * answer that did not come from authz it pauses, so an outage does not burn the request budget.
 */
export class Load {
  readonly outcomes: Outcome[] = [];
  private stopping = false;
  private running: Promise<void>[] = [];

  constructor(private readonly steps: Step[], private readonly maxPerWorker: number, private readonly outagePauseMs = 50) {}

  start(): void {
    this.running = this.steps.map(async (step) => {
      for (let n = 0; n < this.maxPerWorker && !this.stopping; n++) {
        const o = await step(n);
        this.outcomes.push(o);
        if (o.kind === 'refused' || o.kind === 'failed') await sleep(this.outagePauseMs);
      }
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.running);
  }

  count(...kinds: Outcome['kind'][]): number {
    return this.outcomes.filter((o) => kinds.includes(o.kind)).length;
  }

  /** Answers given by authz (allowed or denied) so far. */
  get answered(): number {
    return this.count('allowed', 'denied');
  }

  /**
   * Waits (bounded) until `done()`; fails naming what it waited for. The bound is a guard against
   * hanging, not a performance expectation.
   */
  async until(done: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`gave up waiting for ${what} after ${timeoutMs} ms (outcomes: ${JSON.stringify(this.summary())})`);
      if (this.steps.length > 0 && this.outcomes.length >= this.steps.length * this.maxPerWorker) throw new Error(`request budget spent before ${what} (outcomes: ${JSON.stringify(this.summary())})`);
      await sleep(20);
    }
  }

  summary(): Record<Outcome['kind'], number> {
    const s: Record<Outcome['kind'], number> = { allowed: 0, denied: 0, refused: 0, failed: 0, unexpected: 0 };
    for (const o of this.outcomes) s[o.kind]++;
    return s;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls until `done()` returns a value (bounded); for state outside this process. */
export async function eventually<T>(probe: () => Promise<T | null>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  for (;;) {
    try {
      const v = await probe();
      if (v !== null) return v;
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what} after ${timeoutMs} ms${last ? ` (last error: ${String(last)})` : ''}`);
    await sleep(100);
  }
}

/**
 * Everything the chain of a log directory holds (decisions and the accounting records written
 * after each allowed response), in chain order: what seq numbers, verify and replication count.
 */
export function logEntries(dir: string): LoggedEntry[] {
  return [...readEntriesOfFiles(listLogFiles(dir))];
}

/** Every decision record of a log directory, read with the log's own reader, in chain order. */
export function logRecords(dir: string): ChainedDecisionRecord[] {
  return [...readRecords(dir)].map((r) => r.record);
}

export interface LogIndex {
  records: ChainedDecisionRecord[];
  byDecision: Map<string, ChainedDecisionRecord[]>;
  byRpcId: Map<string, ChainedDecisionRecord[]>;
}

export function indexLog(dir: string): LogIndex {
  const records = logRecords(dir);
  const byDecision = new Map<string, ChainedDecisionRecord[]>();
  const byRpcId = new Map<string, ChainedDecisionRecord[]>();
  for (const r of records) {
    byDecision.set(r.decision_id, [...(byDecision.get(r.decision_id) ?? []), r]);
    if (typeof r.mcp.id === 'string') byRpcId.set(r.mcp.id, [...(byRpcId.get(r.mcp.id) ?? []), r]);
  }
  return { records, byDecision, byRpcId };
}

/** Runs `tollgate logs ...` in process, as the CLI would, capturing its output; `now` fixes its clock. */
export async function tollgateLogs(args: string[], env: NodeJS.ProcessEnv = {}, now?: Date): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const cmd = createLogsCommand({ out: (s) => { out += s; }, err: (s) => { err += s; }, env, now: () => now ?? new Date() });
  const code = await cmd.run(args);
  return { code, out, err };
}

/** `/status` of the running authz (admin listener the mesh always starts). */
export async function authzStatus(mesh: LocalMesh): Promise<StatusDoc> {
  const res = await fetch(`${mesh.endpoints.metrics}/status`);
  if (res.status !== 200) throw new Error(`/status answered ${res.status}`);
  return (await res.json()) as StatusDoc;
}
