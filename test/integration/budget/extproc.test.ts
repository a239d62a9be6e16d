import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { createExtProcHandler, type ExtProcHandler, type ListedItem } from '../../../src/authz/extproc.js';
import { PendingCalls, type PendingCall } from '../../../src/authz/pending.js';
import { SessionOwners } from '../../../src/authz/sessions.js';
import { parseBudgetConfig } from '../../../src/budget/config.js';
import { createBudgetGate, type TollgateBudgetGate } from '../../../src/budget/gate.js';
import { LocalBudgetStore } from '../../../src/budget/local-store.js';
import { countValue } from '../../../src/budget/tokens.js';
import type { ChargeSubject } from '../../../src/budget/types.js';
import { externalProcessorService } from '../../../src/envoy/protos.js';
import { ToolAnnotationStore } from '../../../src/mcp/annotations.js';

/** A ProcessingResponse as proto-loader decodes it (camelCase, oneofs, defaults). */
interface Reply {
  response: string;
  immediateResponse?: { status: { code: string }; body: Buffer; headers: { setHeaders: Array<{ header: { key: string; rawValue: Buffer } }> } | null } | null;
  requestHeaders?: { response: Common | null } | null;
  responseHeaders?: { response: Common | null } | null;
  responseBody?: { response: Common | null } | null;
  responseTrailers?: object | null;
}
interface Common {
  headerMutation: { removeHeaders: string[] } | null;
  bodyMutation: { mutation?: string; body?: Buffer; clearBody?: boolean } | null;
}

/** One ext_proc stream as Envoy drives it: send a message, read the answer. */
class EnvoyStream {
  private readonly replies: Reply[] = [];
  private waiters: Array<(r: Reply) => void> = [];
  constructor(private readonly call: grpc.ClientDuplexStream<object, Reply>) {
    call.on('data', (r: Reply) => {
      const w = this.waiters.shift();
      if (w) w(r);
      else this.replies.push(r);
    });
    call.on('error', () => undefined);
  }

  send(msg: object): Promise<Reply> {
    const next = new Promise<Reply>((resolve) => {
      const r = this.replies.shift();
      if (r) resolve(r);
      else this.waiters.push(resolve);
    });
    this.call.write(msg);
    return next;
  }

  headers(kind: 'requestHeaders' | 'responseHeaders', h: Record<string, string>, endOfStream = false, raw = true): Promise<Reply> {
    const headers = Object.entries(h).map(([key, v]) => (raw ? { key, rawValue: Buffer.from(v) } : { key, value: v }));
    return this.send({ [kind]: { headers: { headers }, endOfStream } });
  }

  body(chunk: Buffer | string, endOfStream: boolean): Promise<Reply> {
    return this.send({ responseBody: { body: Buffer.from(chunk), endOfStream } });
  }

  end(): void { this.call.end(); }
}

/** What the client receives for a chunk: Envoy's chunk, or the processor's replacement. */
function delivered(chunk: Buffer, r: Reply): Buffer {
  const m = r.responseBody?.response?.bodyMutation;
  if (!m || !m.mutation) return chunk;
  if (m.mutation === 'clearBody') return Buffer.alloc(0);
  return m.body ?? Buffer.alloc(0);
}

const cut = (b: Buffer, size: number): Buffer[] => {
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; i += size) out.push(b.subarray(i, i + size));
  return out;
};

const TOOLS = [
  { name: 'search_docs', description: 'Search the docs', inputSchema: { type: 'object' }, annotations: { readOnlyHint: true } },
  { name: 'delete_records', description: 'Delete records', inputSchema: { type: 'object' }, annotations: { destructiveHint: true } },
  { name: 'create_ticket', description: 'Open a ticket', inputSchema: { type: 'object' }, annotations: { readOnlyHint: false } },
];

describe('ext_proc handler over real gRPC', function () {
  this.timeout(20000);
  let dir: string;
  let server: grpc.Server;
  let client: grpc.Client & { Process(): grpc.ClientDuplexStream<object, Reply> };
  let gate: TollgateBudgetGate;
  let pending: PendingCalls;
  let annotations: ToolAnnotationStore;
  let handler: ExtProcHandler;
  let charged: Map<string, (n: number) => void>;
  let filterCalls: ListedItem[];
  let explode: boolean;
  let sessions: SessionOwners;
  let nextId = 0;

  const subject: ChargeSubject = { team: 'growth', agent: 'bot', sub: 'bob', server: 'docs', tool: null };

  const expectCharge = (id: string): Promise<number> => new Promise((resolve) => charged.set(id, resolve));

  const pendingCall = (method: string | null, over: Partial<PendingCall> = {}): PendingCall => {
    const call: PendingCall = { decisionId: `d-${++nextId}`, subject, method, methods: [method], tool: null, server: 'docs', requestTokens: 0, createdAt: Date.now(), ...over };
    pending.put(call);
    return call;
  };

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-extproc-'));
    const config = parseBudgetConfig('budgets:\n  - { name: growth-daily, scope: { team: growth }, limit: 100, window: day }\n', 'b.yaml');
    gate = createBudgetGate(config, LocalBudgetStore.open(config.budgets, { dir, adminPollMs: 0 }));
    pending = new PendingCalls();
    annotations = new ToolAnnotationStore();
    charged = new Map();
    filterCalls = [];
    explode = false;
    sessions = new SessionOwners();
    handler = createExtProcHandler({
      pending, gate, annotations, sessions,
      // Team growth may not see destructive tools.
      filterTool: (call, item) => {
        if (explode) throw new Error('policy blew up');
        filterCalls.push(item);
        return !(call.subject.team === 'growth' && item.annotations?.destructiveHint === true);
      },
      onCharged: (id, n) => charged.get(id)?.(n),
    });
    server = new grpc.Server();
    server.addService(externalProcessorService(), { Process: handler });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    const Ctor = grpc.makeGenericClientConstructor(externalProcessorService(), 'ExternalProcessor');
    client = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as typeof client;
  });

  afterEach(async () => {
    client.close();
    server.forceShutdown();
    await gate.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const open = (): EnvoyStream => new EnvoyStream(client.Process());

  it('counts a tools/call result (BUFFERED JSON), charges the caller and leaves the body alone', async () => {
    const call = pendingCall('tools/call', { tool: 'search_docs', subject: { ...subject, tool: 'search_docs' } });
    const result = { content: [{ type: 'text', text: 'Budgets are enforced before the call reaches the server.' }] };
    const body = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, result }));
    const s = open();
    const done = expectCharge(call.decisionId);
    const rh = await s.headers('requestHeaders', { ':method': 'POST', 'x-tollgate-decision-id': call.decisionId });
    assert.equal(rh.response, 'requestHeaders');
    const ph = await s.headers('responseHeaders', { ':status': '200', 'content-type': 'application/json', 'content-length': String(body.length) });
    assert.equal(ph.responseHeaders?.response?.headerMutation?.removeHeaders.length ?? 0, 0, 'content-length kept: nothing to rewrite');
    const pb = await s.body(body, true);
    assert.deepEqual(delivered(body, pb), body);
    const tokens = await done;
    assert.equal(tokens, countValue(result));
    assert.equal(gate.check({ ...subject, tool: 'search_docs' }, 0).entries[0]!.used, tokens);
    assert.equal(handler.stats.chargedTokens, tokens);
    assert.equal(pending.size, 0, 'the pending call is consumed');
    s.end();
  });

  it('filters a tools/list page streamed in chunks, fixes content-length, records annotations, charges the filtered manifest', async () => {
    const call = pendingCall('tools/list');
    const full = { jsonrpc: '2.0', id: 2, result: { tools: TOOLS, nextCursor: 'p2' } };
    const body = Buffer.from(JSON.stringify(full));
    const s = open();
    const done = expectCharge(call.decisionId);
    await s.headers('requestHeaders', { 'x-tollgate-decision-id': call.decisionId }, false, false);
    const ph = await s.headers('responseHeaders', { ':status': '200', 'content-type': 'application/json', 'content-length': String(body.length) });
    assert.deepEqual(ph.responseHeaders?.response?.headerMutation?.removeHeaders, ['content-length']);
    const chunks = cut(body, 50);
    const out: Buffer[] = [];
    for (const [i, c] of chunks.entries()) out.push(delivered(c, await s.body(c, i === chunks.length - 1)));
    const got = JSON.parse(Buffer.concat(out).toString()) as typeof full;
    assert.deepEqual(got.result.tools.map((t) => t.name), ['search_docs', 'create_ticket']);
    assert.equal(got.result.nextCursor, 'p2');
    assert.equal(got.id, 2);
    assert.deepEqual(filterCalls.map((f) => [f.kind, f.name]), [['tool', 'search_docs'], ['tool', 'delete_records'], ['tool', 'create_ticket']]);
    // Annotations come from the server's full list, the hidden tool included.
    assert.deepEqual(annotations.get('docs', 'delete_records'), { destructiveHint: true });
    assert.deepEqual(annotations.get('docs', 'search_docs'), { readOnlyHint: true });
    assert.equal(await done, countValue(got.result));
    assert.equal(handler.stats.filteredItems, 1);
    s.end();
  });

  it('filters tools/list in an SSE stream whose events are split across chunks, keeping the framing', async () => {
    const call = pendingCall('tools/list');
    const progress = 'event: message\nid: 1\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t","progress":1}}\n\n';
    const list = { jsonrpc: '2.0', id: 3, result: { tools: TOOLS } };
    const stream = Buffer.from(`${progress}: keep-alive\n\nevent: message\r\nid: 2\r\ndata: ${JSON.stringify(list)}\r\n\r\n`);
    const s = open();
    const done = expectCharge(call.decisionId);
    await s.headers('requestHeaders', { 'x-tollgate-decision-id': call.decisionId });
    const ph = await s.headers('responseHeaders', { ':status': '200', 'content-type': 'text/event-stream' });
    assert.equal(ph.responseHeaders?.response?.headerMutation?.removeHeaders.length ?? 0, 0);
    const chunks = cut(stream, 37);
    const out: Buffer[] = [];
    for (const [i, c] of chunks.entries()) out.push(delivered(c, await s.body(c, i === chunks.length - 1)));
    const filtered = { ...list, result: { tools: [TOOLS[0], TOOLS[2]] } };
    assert.equal(Buffer.concat(out).toString(), `${progress}: keep-alive\n\nevent: message\r\nid: 2\r\ndata: ${JSON.stringify(filtered)}\r\n\r\n`);
    assert.equal(await done, countValue(filtered.result));
    s.end();
  });

  it('finds a list hidden in a batch by its shape', async () => {
    const call = pendingCall('tools/call', { methods: ['tools/call', 'tools/list'] });
    const batch = [{ jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text: 'ok' }] } }, { jsonrpc: '2.0', id: 2, result: { tools: TOOLS } }];
    const s = open();
    const done = expectCharge(call.decisionId);
    await s.headers('requestHeaders', { 'x-tollgate-decision-id': call.decisionId });
    await s.headers('responseHeaders', { ':status': '200', 'content-type': 'application/json' });
    const body = Buffer.from(JSON.stringify(batch));
    const got = JSON.parse(delivered(body, await s.body(body, true)).toString()) as Array<{ result: { tools?: Array<{ name: string }> } }>;
    assert.deepEqual(got[1]!.result.tools!.map((t) => t.name), ['search_docs', 'create_ticket']);
    assert.deepEqual(got[0], batch[0]);
    assert.ok((await done) > 0);
    s.end();
  });

  it('delivers and charges a response that takes the budget past its limit; the next call is denied', async () => {
    const caller = { ...subject, tool: 'search_docs' };
    assert.equal(gate.check(caller, 5).exhausted, null, 'allowed: 100 tokens left');
    const call = pendingCall('tools/call', { subject: caller });
    const result = { content: [{ type: 'text', text: 'lorem ipsum dolor sit amet '.repeat(40) }] };
    const body = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 9, result }));
    const s = open();
    const done = expectCharge(call.decisionId);
    await s.headers('requestHeaders', { 'x-tollgate-decision-id': call.decisionId });
    await s.headers('responseHeaders', { ':status': '200', 'content-type': 'application/json' });
    assert.deepEqual(delivered(body, await s.body(body, true)), body, 'delivered whole');
    const tokens = await done;
    assert.ok(tokens > 100);
    const next = gate.check(caller, 0);
    assert.equal(next.entries[0]!.used, tokens);
    assert.equal(next.exhausted?.name, 'growth-daily');
    s.end();
  });

  it('refuses, before it reaches the server, a request whose decision id it does not hold (another replica, expired, missing)', async () => {
    for (const h of [{ 'x-tollgate-decision-id': 'never-issued' }, {}] as Array<Record<string, string>>) {
      const s = open();
      const r = await s.headers('requestHeaders', h);
      assert.equal(r.response, 'immediateResponse', 'not passed through unfiltered and uncharged');
      assert.equal(r.immediateResponse!.status.code, 'ServiceUnavailable');
      const err = JSON.parse(r.immediateResponse!.body.toString()) as { error: { code: number; message: string } };
      assert.equal(err.error.code, -32006);
      assert.match(err.error.message, h['x-tollgate-decision-id'] ? /not known to this authz instance.*different authz replicas/ : /no x-tollgate-decision-id/);
      s.end();
    }
    assert.equal(handler.stats.unknownDecision, 2);
    assert.equal(filterCalls.length, 0);
  });

  it('refuses a list it cannot read: compressed, or neither JSON nor SSE', async () => {
    for (const h of [{ 'content-type': 'application/json', 'content-encoding': 'gzip' }, { 'content-type': 'text/plain' }, {}] as Array<Record<string, string>>) {
      const call = pendingCall('tools/list', { ids: [7] });
      const s = open();
      await s.headers('requestHeaders', { 'x-tollgate-decision-id': call.decisionId });
      const r = await s.headers('responseHeaders', { ':status': '200', ...h });
      assert.equal(r.response, 'immediateResponse', JSON.stringify(h));
      assert.equal(r.immediateResponse!.status.code, 'BadGateway');
      const err = JSON.parse(r.immediateResponse!.body.toString()) as { id: number; error: { code: number; message: string; data: { decision_id: string } } };
      assert.equal(err.id, 7, 'answers the list request by its id');
      assert.match(err.error.message, /could not be filtered by policy/);
      assert.equal(err.error.data.decision_id, call.decisionId);
      s.end();
    }
    // An error status carries no list: a GET refused with 405 and a text body passes as it is.
    const get = pendingCall(null, { methods: [null], ids: [null] });
    const g = open();
    await g.headers('requestHeaders', { 'x-tollgate-decision-id': get.decisionId });
    assert.equal((await g.headers('responseHeaders', { ':status': '405', 'content-type': 'text/plain' })).response, 'responseHeaders');
    g.end();
    // Not a list: a compressed tools/call result is the client's business.
    const call = pendingCall('tools/call', { ids: [8] });
    const s = open();
    await s.headers('requestHeaders', { 'x-tollgate-decision-id': call.decisionId });
    const r = await s.headers('responseHeaders', { ':status': '200', 'content-type': 'application/json', 'content-encoding': 'gzip' });
    assert.equal(r.response, 'responseHeaders');
    s.end();
    assert.equal(handler.stats.unfilterable, 3);
  });

  it('filters list answers replayed on a GET stream (Last-Event-ID resumption)', async () => {
    const call = pendingCall(null, { methods: [null], ids: [null] });
    const list = { jsonrpc: '2.0', id: 4, result: { tools: TOOLS } };
    const stream = Buffer.from(`id: 17\ndata: ${JSON.stringify(list)}\n\n`);
    const s = open();
    await s.headers('requestHeaders', { 'x-tollgate-decision-id': call.decisionId });
    await s.headers('responseHeaders', { ':status': '200', 'content-type': 'text/event-stream' });
    const out: Buffer[] = [];
    const chunks = cut(stream, 40);
    for (const [i, c] of chunks.entries()) out.push(delivered(c, await s.body(c, i === chunks.length - 1)));
    assert.equal(Buffer.concat(out).toString(), `id: 17\ndata: ${JSON.stringify({ ...list, result: { tools: [TOOLS[0], TOOLS[2]] } })}\n\n`);
    s.end();
  });

  it('binds the session an initialize answer creates to the caller', async () => {
    const owner = { iss: 'https://issuer', sub: 'bob', agent: 'bot' };
    const call = pendingCall('initialize', { owner });
    const s = open();
    await s.headers('requestHeaders', { 'x-tollgate-decision-id': call.decisionId });
    await s.headers('responseHeaders', { ':status': '200', 'content-type': 'application/json', 'mcp-session-id': 'sess-42' });
    await s.body('{"jsonrpc":"2.0","id":1,"result":{}}', true);
    s.end();
    assert.equal(sessions.standing('sess-42', owner, Date.now()).kind, 'owned');
    assert.equal(sessions.standing('sess-42', { ...owner, sub: 'mallory' }, Date.now()).kind, 'foreign');
  });

  it('hides the items a failing filter cannot judge, and still delivers the list', async () => {
    const call = pendingCall('tools/list');
    const body = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 2, result: { tools: TOOLS, nextCursor: 'p2' } }));
    explode = true;
    const s = open();
    await s.headers('requestHeaders', { 'x-tollgate-decision-id': call.decisionId });
    await s.headers('responseHeaders', { ':status': '200', 'content-type': 'application/json' });
    const got = JSON.parse(delivered(body, await s.body(body, true)).toString()) as { id: number; result: { tools: unknown[]; nextCursor: string } };
    assert.deepEqual(got, { jsonrpc: '2.0', id: 2, result: { tools: [], nextCursor: 'p2' } });
    assert.equal(handler.stats.errors, TOOLS.length, 'one error per item the filter failed on');
    assert.equal(handler.stats.filteredItems, TOOLS.length);
    s.end();
  });

  it('refuses a list whose processing failed internally (fail closed), and counts the error', async () => {
    const call = pendingCall('tools/list', { ids: [2] });
    const body = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 2, result: { tools: TOOLS } }));
    annotations.record = () => { throw new Error('annotation store blew up'); };
    const s = open();
    await s.headers('requestHeaders', { 'x-tollgate-decision-id': call.decisionId });
    await s.headers('responseHeaders', { ':status': '200', 'content-type': 'application/json' });
    const chunks = cut(body, 64);
    const out: Buffer[] = [];
    for (const [i, c] of chunks.entries()) out.push(delivered(c, await s.body(c, i === chunks.length - 1)));
    const got = JSON.parse(Buffer.concat(out).toString()) as { id: number; error: { code: number; message: string } };
    assert.equal(got.id, 2);
    assert.equal(got.error.code, -32006);
    assert.match(got.error.message, /internal error/);
    assert.equal(handler.stats.errors, 1);
    s.end();
  });

  it('answers trailers and header-only responses', async () => {
    const call = pendingCall('notifications/initialized', { methods: ['notifications/initialized'] });
    const s = open();
    const done = expectCharge(call.decisionId);
    await s.headers('requestHeaders', { 'x-tollgate-decision-id': call.decisionId });
    const ph = await s.headers('responseHeaders', { ':status': '202' }, true);
    assert.equal(ph.response, 'responseHeaders');
    assert.equal(await done, 0);
    const t = await s.send({ responseTrailers: { trailers: { headers: [] } } });
    assert.equal(t.response, 'responseTrailers');
    s.end();
  });
});
