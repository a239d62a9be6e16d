import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as h2connect } from 'node:http2';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LocalMesh } from '../../../src/mesh/local.js';
import type { ChainedDecisionRecord } from '../../../src/decisionlog/types.js';
import { connectClient, rawPost } from '../../support/mcp-client.js';
import { decisions, until } from '../budget-e2e/support.js';
import { countValue } from '../../../src/budget/tokens.js';

type ErrBody = { id: unknown; error: { code: number; message: string; data: { decision_id: string } } };

const echo = process.env.TOLLGATE_TEST_ECHO === '1';
const PORTS = { envoy: 0, envoyAdmin: 0, authz: 0, issuer: 0 };
const call = (id: number, tool: string, args: Record<string, unknown>) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: tool, arguments: args } });

/** The records of one decision id, once the log has them. */
async function recordsOf(state: string, decisionId: string, n = 1): Promise<ChainedDecisionRecord[]> {
  return until(() => { const r = decisions(state).filter((x) => x.decision_id === decisionId); return r.length >= n ? r : null; }, `records of ${decisionId}`);
}

/** One HTTP/2 (h2c) request to Envoy with a method exactly as given, as a client other than fetch can send it. */
function h2(url: string, method: string, headers: Record<string, string>, body: string): Promise<{ status: number; text: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const session = h2connect(u.origin);
    session.on('error', reject);
    const req = session.request({ ':method': method, ':path': u.pathname, 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers });
    let text = '';
    let status = 0;
    req.on('response', (h) => { status = Number(h[':status']); });
    req.setEncoding('utf8');
    req.on('data', (c: string) => { text += c; });
    req.on('end', () => { session.close(); resolve({ status, text }); });
    req.on('error', (e) => { session.close(); reject(e); });
    req.end(body);
  });
}

/** A GET (or DELETE) with a body: what fetch refuses to send, but a raw client can. */
function withBody(url: string, method: string, headers: Record<string, string>, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Issue 10 items 4 and 6 through the real mesh (Envoy, authz in its own process, the demo MCP
 * server on the SDK, the example policies): the decision record says what happened to the call,
 * a request whose method Envoy and authz could read differently is refused, and a session can
 * only be used by the identity that initialized it.
 */
describe('what the log says happened, and who owns a session, end to end', function () {
  this.timeout(120_000);
  let mesh: LocalMesh;
  let state: string;
  const clients: Client[] = [];

  before(async () => {
    state = mkdtempSync(join(tmpdir(), 'tollgate-records-e2e-'));
    mesh = await LocalMesh.start({ policies: 'policies', stateDir: state, ports: PORTS, echo });
  });

  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await mesh?.stop();
    rmSync(state, { recursive: true, force: true });
  });

  async function client(claims: { sub: string; team?: string; groups?: string[] }): Promise<{ c: Client; sessionId: string; token: string }> {
    const token = await mesh.token(claims);
    const c = await connectClient(mesh.endpoints.mcp, token);
    clients.push(c);
    const sessionId = (c.transport as StreamableHTTPClientTransport).sessionId;
    assert.ok(sessionId, 'the demo server runs sessions');
    return { c, sessionId, token };
  }

  /** Whether any request of this decision reached the MCP server (Envoy tags each with its decision id). */
  const reachedServer = (decisionId: string): boolean => mesh.demo!.requests.some((r) => r.decisionId === decisionId);

  it('records the allowed elements of a refused batch as not executed', async () => {
    const { sessionId, token } = await client({ sub: 'alice', team: 'payments' });
    const batch = [call(1, 'search_docs', { query: 'refund' }), call(2, 'delete_records', { table: 'invoices', where: 'true' })];
    const r = await rawPost(mesh.endpoints.mcp, JSON.stringify(batch), { authorization: `Bearer ${token}`, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' });
    const body = r.json as ErrBody[];
    assert.deepEqual(body.map((e) => [e.id, e.error.code]), [[1, -32007], [2, -32003]]);
    assert.ok(!reachedServer(body[0]!.error.data.decision_id), 'nothing of the batch reached the server');
    const recs = await recordsOf(state, body[0]!.error.data.decision_id, 2);
    const byId = new Map(recs.map((x) => [x.mcp.id, x.result]));
    assert.deepEqual({ allow: byId.get(1)!.allow, outcome: byId.get(1)!.outcome, policy_allow: byId.get(1)!.policy_allow, code: byId.get(1)!.code },
      { allow: false, outcome: 'not_executed', policy_allow: true, code: -32007 }, 'not allow/200');
    assert.equal(byId.get(2)!.outcome, 'refused');
  });

  it('records an allowed call as forwarded', async () => {
    const { c } = await client({ sub: 'alice', team: 'payments' });
    await c.callTool({ name: 'search_docs', arguments: { query: 'chargeback' } });
    const id = mesh.demo!.requests.at(-1)!.decisionId!;
    const [rec] = await recordsOf(state, id);
    assert.deepEqual([rec!.result.allow, rec!.result.outcome, rec!.result.http_status], [true, 'forwarded', 200]);
  });

  it('refuses an HTTP/2 `get` carrying a tools/call body instead of judging it as something else', async () => {
    const { sessionId, token } = await client({ sub: 'alice', team: 'payments' });
    const r = await h2(mesh.endpoints.mcp, 'get', { authorization: `Bearer ${token}`, 'mcp-session-id': sessionId }, JSON.stringify(call(7, 'delete_records', { table: 'invoices', where: 'true' })));
    assert.equal(r.status, 405, r.text);
    const err = JSON.parse(r.text) as ErrBody;
    assert.match(err.error.message, /case-sensitive/);
    assert.ok(!reachedServer(err.error.data.decision_id));
    assert.ok(!mesh.demo!.requests.some((x) => x.method === 'get'));
    const [rec] = await recordsOf(state, err.error.data.decision_id);
    assert.deepEqual([rec!.result.allow, rec!.result.outcome, rec!.result.http_status], [false, 'refused', 405]);
    assert.equal(rec!.input, null, 'never judged as a GET');
  });

  it('refuses a GET that carries a body', async () => {
    const { sessionId, token } = await client({ sub: 'alice', team: 'payments' });
    const r = await withBody(mesh.endpoints.mcp, 'GET', { authorization: `Bearer ${token}`, 'mcp-session-id': sessionId, accept: 'text/event-stream' }, JSON.stringify(call(8, 'delete_records', { table: 'a', where: 'true' })));
    assert.equal(r.status, 400, r.text);
    assert.match(r.text, /must not carry a body/);
    assert.ok(!reachedServer((JSON.parse(r.text) as ErrBody).error.data.decision_id));
  });

  describe('sessions', () => {
    it('another identity cannot POST into, stream from or end a session; its owner carries on', async () => {
      const owner = await client({ sub: 'alice', team: 'payments' });
      const intruder = await mesh.token({ sub: 'sam', team: 'support' });
      const headers = { authorization: `Bearer ${intruder}`, 'mcp-session-id': owner.sessionId, 'mcp-protocol-version': '2025-06-18' };
      const post = await rawPost(mesh.endpoints.mcp, JSON.stringify(call(3, 'search_docs', { query: 'x' })), headers);
      const get = await fetch(mesh.endpoints.mcp, { method: 'GET', headers: { ...headers, accept: 'text/event-stream' } });
      const del = await fetch(mesh.endpoints.mcp, { method: 'DELETE', headers });
      for (const [what, status, text] of [['POST', post.status, post.text], ['GET', get.status, await get.text()], ['DELETE', del.status, await del.text()]] as const) {
        assert.equal(status, 404, `${what}: ${text}`);
        const err = JSON.parse(text) as ErrBody;
        assert.equal(err.error.code, -32008, what);
        assert.match(err.error.message, /belongs to another identity/);
        assert.ok(!reachedServer(err.error.data.decision_id), `${what} reached the server`);
      }
      const res = await owner.c.callTool({ name: 'search_docs', arguments: { query: 'refund' } });
      assert.match((res.content as Array<{ text: string }>)[0]!.text, /Refund policy/, 'the session survived');
    });

    it('the policy sees who owns the session (input.mcp.session), learnt from the initialize answer', async () => {
      const { c, sessionId } = await client({ sub: 'alice', team: 'payments' });
      await c.callTool({ name: 'search_docs', arguments: { query: 'refund' } });
      const id = mesh.demo!.requests.at(-1)!.decisionId!;
      const [rec] = await recordsOf(state, id);
      const session = rec!.input!.mcp.session!;
      assert.equal(session.id, sessionId);
      assert.equal(session.bound_by, 'initialize');
      assert.equal(session.owner?.sub, 'alice');
      assert.equal(session.owner?.iss, mesh.endpoints.issuer);
    });
  });
});

/**
 * A Check answered after Envoy's ext_authz timeout: the client already got Envoy's refusal, so
 * the record must not say the call was allowed. A policy that is slow for one tool makes authz
 * answer late, for real (Envoy's timeout here: 150 ms).
 */
describe('a Check answered after Envoy gave up, end to end', function () {
  this.timeout(120_000);
  let mesh: LocalMesh;
  let state: string;
  let policies: string;

  before(async () => {
    state = mkdtempSync(join(tmpdir(), 'tollgate-late-e2e-'));
    policies = join(state, 'policies');
    mkdirSync(policies);
    writeFileSync(join(policies, 'authz.rego'), [
      'package tollgate.authz', '',
      'default decision := {"allow": false, "reasons": ["no rule"]}', '',
      'decision := {"allow": true, "reasons": []} if input.mcp.tool != "slow_tool"', '',
      '# Seconds of real work in WebAssembly: this authz answers long after Envoy\'s deadline.',
      'decision := {"allow": true, "reasons": []} if {', '\tinput.mcp.tool == "slow_tool"',
      '\tcount([x | some x in numbers.range(1, 150000); x % 3 == 0]) > 0', '}', '',
    ].join('\n'));
    mesh = await LocalMesh.start({ policies, stateDir: state, ports: PORTS, echo, authzTimeoutMs: 150 });
  });

  after(async () => {
    await mesh?.stop();
    rmSync(state, { recursive: true, force: true });
  });

  it('records the late answer as not executed, with how late it was', async () => {
    const token = await mesh.token({ sub: 'alice', team: 'payments' });
    // Warm up (JWKS fetched, connection open): a fast call is answered in time.
    const init = { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } };
    const ok = await until(async () => {
      const res = await rawPost(mesh.endpoints.mcp, JSON.stringify(init), { authorization: `Bearer ${token}` });
      return res.status === 200 ? res : null;
    }, 'a fast call answered in time');
    const sessionId = ok.headers.get('mcp-session-id')!;
    const before = decisions(state).length;
    const t0 = Date.now();
    const r = await rawPost(mesh.endpoints.mcp, JSON.stringify(call(5, 'slow_tool', {})), { authorization: `Bearer ${token}`, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' });
    assert.ok(r.status >= 400, `Envoy refused on its own timeout (got ${r.status} after ${Date.now() - t0} ms)`);
    const rec = await until(() => decisions(state).slice(before).find((x) => x.mcp.tool === 'slow_tool'), 'the slow call\'s record', 60_000);
    assert.equal(rec.result.allow, false, JSON.stringify(rec.result));
    assert.equal(rec.result.outcome, 'not_executed');
    assert.equal(rec.result.policy_allow, true, JSON.stringify(rec.result));
    assert.ok((rec.result.late_ms ?? 0) > 0, `late_ms ${rec.result.late_ms}`);
    assert.match(rec.result.reasons.join(' '), /after Envoy's ext_authz deadline/);
    assert.ok(!mesh.demo!.calls.some((c) => c.tool === 'slow_tool'));
  });
});

/**
 * Issue 10, suspected: "a batch can overshoot a budget by its own arguments". Each element fitted
 * the budget on its own; together they did not, and all of them ran. Each element is now judged
 * with what the earlier ones would spend.
 */
describe('a batch cannot overshoot a budget by its own arguments, end to end', function () {
  this.timeout(120_000);
  let mesh: LocalMesh;
  let state: string;
  const ARGS = { query: 'refund policy for annual plans billed in advance' };

  before(async () => {
    state = mkdtempSync(join(tmpdir(), 'tollgate-batch-budget-e2e-'));
    const budgets = join(state, 'budgets.yaml');
    // Room for two of these calls' arguments and a half: a batch of three must not pass.
    writeFileSync(budgets, `budgets:\n  - { name: search-daily, scope: { team: payments, tool: search_docs }, limit: ${Math.floor(countValue(ARGS) * 2.5)}, window: day }\n`);
    mesh = await LocalMesh.start({ policies: 'policies', stateDir: state, ports: PORTS, echo, authzArgs: ['--budgets', budgets] });
  });

  after(async () => {
    await mesh?.stop();
    rmSync(state, { recursive: true, force: true });
  });

  it('refuses the batch whose elements fit one by one but not together, and charges nothing', async () => {
    const token = await mesh.token({ sub: 'alice', team: 'payments' });
    const init = { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } };
    const opened = await rawPost(mesh.endpoints.mcp, JSON.stringify(init), { authorization: `Bearer ${token}` });
    const headers = { authorization: `Bearer ${token}`, 'mcp-session-id': opened.headers.get('mcp-session-id')!, 'mcp-protocol-version': '2025-06-18' };
    const r = await rawPost(mesh.endpoints.mcp, JSON.stringify([call(1, 'search_docs', ARGS), call(2, 'search_docs', ARGS), call(3, 'search_docs', ARGS)]), headers);
    const body = r.json as ErrBody[];
    assert.deepEqual(body.map((e) => [e.id, e.error.code]), [[1, -32007], [2, -32007], [3, -32004]], r.text);
    assert.match(body[2]!.error.message, /budget "search-daily" has \d+ of \d+ tokens left/);
    assert.equal(mesh.demo!.calls.length, 0, 'none of them ran');
    // Two fit, and go through.
    const ok = await rawPost(mesh.endpoints.mcp, JSON.stringify([call(4, 'search_docs', ARGS), call(5, 'search_docs', ARGS)]), headers);
    assert.equal(ok.status, 200, ok.text);
    assert.equal(mesh.demo!.calls.length, 2);
  });
});
