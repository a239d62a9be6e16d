import { strict as assert } from 'node:assert';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { countValue } from '../../../src/budget/tokens.js';
import { windowAt } from '../../../src/budget/window.js';
import { DemoMcpServer } from '../../../src/demo/server.js';
import { LocalMesh } from '../../../src/mesh/local.js';
import { decisions, recordingClient, tempDir, tollgate, until } from './support.js';

/**
 * Issue 4 end to end with a standalone authz (budget state in process, saved under its state
 * directory): MCP SDK client -> real Envoy (ext_authz + ext_proc) -> tollgate authz process ->
 * the demo MCP server. Counts are checked to the token: the test counts what the client received
 * with the same tokenizer, so every number below is exact, not approximate.
 */
describe('token budgets through the real mesh (standalone authz)', function () {
  this.timeout(60_000);
  const ARGS = { query: 'refund' };
  /** Full calls that fit before the one whose response crosses the limit. */
  const FITTING = 4;

  let state: string;
  let mesh: LocalMesh;
  let limit: number;
  /** Tokens of the initialize result, of one search_docs result, and of its arguments. */
  let init: number;
  let result: number;
  let args: number;
  const clients: Client[] = [];

  before(async () => {
    // What the demo server answers, counted as ext_proc counts it (each response's `result`), so
    // the limit can be placed exactly: FITTING calls fit, the next one is allowed with room for
    // its arguments but not for its result, and its result takes the budget over the limit.
    const demo = await DemoMcpServer.start({ port: 0 });
    try {
      const probe = await recordingClient(demo.url, null);
      await probe.client.callTool({ name: 'search_docs', arguments: ARGS });
      await probe.settled();
      await probe.client.close();
      const [initMsg, callMsg] = probe.received;
      init = countValue(initMsg!.result);
      result = countValue(callMsg!.result);
      args = countValue(ARGS);
    } finally {
      await demo.close();
    }
    limit = init + FITTING * (args + result) + args + Math.floor(result / 2);

    state = tempDir('budget-e2e');
    const budgets = join(state, 'budgets.yaml');
    writeFileSync(budgets, [
      'budgets:',
      `  - { name: payments-daily, scope: { team: payments }, limit: ${limit}, window: day }`,
      '  - { name: support-daily, scope: { team: support }, limit: 1000000, window: day, action: warn }',
      '',
    ].join('\n'));
    mesh = await LocalMesh.start({
      policies: 'policies', stateDir: state, ports: { envoy: 0, envoyAdmin: 0, authz: 0, issuer: 0 },
      authzArgs: ['--budgets', budgets], echo: process.env.TOLLGATE_TEST_ECHO === '1',
    });
  });

  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await mesh?.stop();
    if (state) rmSync(state, { recursive: true, force: true });
  });

  const toolCalls = (sub: string) => decisions(state).filter((r) => r.identity.sub === sub && r.mcp.method === 'tools/call');

  let allowed = 0;
  let denial: McpError | null = null;
  let lastResultText = '';

  it('lets calls through until the team budget is spent, then refuses with -32004 naming the budget, its limit and the reset', async () => {
    const alice = await recordingClient(mesh.endpoints.mcp, await mesh.token({ sub: 'alice', team: 'payments' }));
    clients.push(alice.client);
    for (let i = 0; i < FITTING + 10 && !denial; i++) {
      try {
        const r = await alice.client.callTool({ name: 'search_docs', arguments: ARGS });
        lastResultText = (r.content as Array<{ text: string }>)[0]!.text;
        allowed++;
      } catch (e) {
        if (!(e instanceof McpError)) throw e;
        denial = e;
      }
    }
    assert.ok(denial, 'the budget ran out within the loop');
    const d = denial as McpError;
    const windowEnd = new Date(windowAt('day', 'UTC', Date.now()).end).toISOString();
    assert.equal(d.code, -32004, d.message);
    assert.match(d.message, new RegExp(`budget "payments-daily" is exhausted: \\d+ of ${limit} tokens used this day; it resets at ${windowEnd.replace(/\./g, '\\.')}`));
    const data = d.data as { decision_id: string; reasons: string[] };
    assert.match(data.decision_id, /^[0-9a-f-]{36}$/);
    assert.equal(data.reasons.length, 1);
    // The call that crossed the limit was answered in full: the client holds its result.
    assert.match(lastResultText, /Refund policy/);
    assert.equal(mesh.demo!.calls.filter((c) => c.tool === 'search_docs').length, allowed, 'the refused call never reached the server');
  });

  it('charges the response that crosses the limit in full; the overshoot stays within the documented bound', async () => {
    const records = toolCalls('alice');
    const allowedRecords = records.filter((r) => r.result.allow);
    const refused = records.filter((r) => !r.result.allow);
    assert.equal(allowedRecords.length, allowed);
    assert.equal(refused.length, 1);
    // Every call was allowed while the budget had room for its arguments.
    for (const r of allowedRecords) assert.ok(r.budget![0]!.used + args <= limit, `allowed at used=${r.budget![0]!.used}`);

    // Exact accounting: the initialize result, and every allowed call's arguments and result.
    const total = init + allowed * (args + result);
    // What the refusing Check saw: everything, unless a result was still being counted (the exact
    // final figure is checked through `tollgate budget status` below).
    assert.ok(refused[0]!.budget![0]!.used <= total && refused[0]!.budget![0]!.used >= limit - args, `refused at used=${refused[0]!.budget![0]!.used}`);
    const overshoot = total - limit;
    assert.ok(overshoot > 0, 'a response took the budget past its limit');

    // The bound (docs/budgets.md): the results of the calls in flight (allowed, result not yet
    // charged) when the budget ran out. For one sequential client that is the call whose result
    // crossed the limit, plus the next call if its Check came before that result was charged.
    const lagged = allowedRecords.filter((r, j) => r.budget![0]!.used < init + j * (args + result)).length;
    const inFlight = lagged > 0 ? 2 : 1;
    assert.ok(overshoot <= inFlight * result, `overshoot ${overshoot} ≤ ${inFlight} in flight × ${result}-token results`);
    if (lagged === 0) {
      // Every result was charged before the next Check: exactly FITTING calls fit, the next one
      // crossed by the half result the limit was placed short of.
      assert.equal(allowed, FITTING + 1);
      assert.equal(overshoot, result - Math.floor(result / 2));
    }
    console.log(`      (limit ${limit}: initialize ${init} + ${allowed} calls × (${args} args + ${result} result) = ${total} charged; overshoot ${overshoot} ≤ bound ${inFlight * result}; Checks ahead of a charge: ${lagged})`);
  });

  it('gives the policy input.budget with limit, used and remaining of every applicable budget', () => {
    const windowEnd = new Date(windowAt('day', 'UTC', Date.now()).end).toISOString();
    const records = toolCalls('alice');
    assert.ok(records.length >= 2);
    for (const r of records) {
      const b = r.input!.budget;
      assert.equal(b.estimated_tokens, args);
      assert.equal(b.budgets.length, 1, 'only the team\'s own budget applies');
      const e = b.budgets[0]!;
      assert.deepEqual({ name: e.name, scope: e.scope, limit: e.limit, window: e.window, action: e.action }, { name: 'payments-daily', scope: { team: 'payments' }, limit, window: 'day', action: 'deny' });
      assert.equal(e.remaining, Math.max(0, limit - e.used));
      assert.ok(e.resets_at === windowEnd || Date.parse(e.resets_at) === Date.parse(windowEnd) - 86_400_000, e.resets_at);
      // The record's own budget summary agrees with what the policy was given.
      assert.deepEqual(r.budget, [{ name: e.name, limit: e.limit, used: e.used, remaining: e.remaining }]);
    }
    // The used amount the policy sees grows call by call.
    const used = records.map((r) => r.input!.budget.budgets[0]!.used);
    assert.deepEqual([...used].sort((x, y) => x - y), used);
  });

  it('refuses the exhausted team even a new session, while another team (warn budget) carries on', async () => {
    await assert.rejects(recordingClient(mesh.endpoints.mcp, await mesh.token({ sub: 'alex', team: 'payments' })), (e: unknown) => e instanceof McpError && e.code === -32004);
    const sam = await recordingClient(mesh.endpoints.mcp, await mesh.token({ sub: 'sam', team: 'support' }));
    clients.push(sam.client);
    const r = await sam.client.callTool({ name: 'get_customer', arguments: { customer_id: 'cus_1001' } });
    assert.match((r.content as Array<{ text: string }>)[0]!.text, /Ada Lovelace/);
    const rec = toolCalls('sam').at(-1)!;
    assert.equal(rec.input!.budget.budgets[0]!.name, 'support-daily');
    assert.equal(rec.input!.budget.budgets[0]!.action, 'warn');
  });

  it('tollgate budget status --state DIR shows used / limit / remaining / reset', async () => {
    const total = init + allowed * (args + result);
    // authz saves its state about a second after a change.
    const rows = await until(async () => {
      const out = await tollgate(['budget', 'status', '--state', state, '--json']);
      assert.equal(out.code, 0, out.stderr);
      const all = (JSON.parse(out.stdout) as { budgets: Array<{ name: string; used: number; limit: number; remaining: number; resetsAt: string; window: string }> }).budgets;
      return all.find((b) => b.name === 'payments-daily')?.used === total ? all : null;
    }, 'budget status to show every charged token');
    const row = rows.find((b) => b.name === 'payments-daily')!;
    assert.deepEqual({ used: row.used, limit: row.limit, remaining: row.remaining, window: row.window }, { used: total, limit, remaining: 0, window: 'day' });
    assert.equal(row.resetsAt, new Date(windowAt('day', 'UTC', Date.now()).end).toISOString());

    const table = await tollgate(['budget', 'status', '--state', state, '--team', 'payments']);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trim().split('\n');
    assert.match(lines[0]!, /^BUDGET\s+SCOPE\s+WINDOW\s+USED\s+LIMIT\s+REMAINING\s+ACTION\s+RESETS/);
    assert.equal(lines.length, 2, 'only the payments budget');
    const fmt = (n: number): string => n.toLocaleString('en-US');
    assert.match(lines[1]!, new RegExp(`^payments-daily\\s+team=payments\\s+day \\S+\\s+${fmt(total)}\\s+${fmt(limit)}\\s+0\\s+deny\\s+${row.resetsAt.replace(/\./g, '\\.')} \\(in `));
  });
});
