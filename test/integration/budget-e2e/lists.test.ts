import { strict as assert } from 'node:assert';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CallToolResultSchema, McpError, type Tool } from '@modelcontextprotocol/sdk/types.js';
import { LocalMesh } from '../../../src/mesh/local.js';
import { connectClient, rawPost } from '../../support/mcp-client.js';
import { decisions, PagingMcpServer, tempDir, type ToolPage } from './support.js';

const PORTS = { envoy: 0, envoyAdmin: 0, authz: 0, issuer: 0 };
const echo = process.env.TOLLGATE_TEST_ECHO === '1';

const names = (tools: Array<{ name: string }>): string[] => tools.map((t) => t.name);

/** Every page of tools/list as the client walks it: [names, nextCursor, _meta] per page. */
async function walk(c: Client): Promise<Array<[string[], string | undefined, unknown]>> {
  const pages: Array<[string[], string | undefined, unknown]> = [];
  let cursor: string | undefined;
  for (let i = 0; i < 10; i++) {
    const page = await c.listTools(cursor === undefined ? undefined : { cursor });
    pages.push([names(page.tools), page.nextCursor, page._meta]);
    cursor = page.nextCursor;
    if (cursor === undefined) break;
  }
  return pages;
}

const deniedWith = (code: number, reason?: RegExp) => (e: unknown): boolean => {
  assert.ok(e instanceof McpError, `expected McpError, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  if (reason) assert.match(e.message, reason);
  return true;
};

/**
 * Tool lists and annotations through the real mesh: tools/list answers pass Envoy's ext_proc,
 * which asks the policy in force about every listed tool as the caller, removes what the caller
 * may not call, and remembers the annotations the server declared for input.mcp.annotations.
 */
describe('policy-filtered tool lists and server annotations, end to end', function () {
  this.timeout(60_000);

  describe('the example policy in front of the demo server (no budgets configured)', () => {
    let state: string;
    let mesh: LocalMesh;
    const clients: Client[] = [];

    before(async () => {
      state = tempDir('lists-e2e');
      mesh = await LocalMesh.start({ policies: 'policies', stateDir: state, ports: PORTS, echo });
    });

    after(async () => {
      for (const c of clients) await c.close().catch(() => undefined);
      await mesh?.stop();
      if (state) rmSync(state, { recursive: true, force: true });
    });

    async function client(claims: { sub: string; team?: string; groups?: string[] }): Promise<Client> {
      const c = await connectClient(mesh.endpoints.mcp, await mesh.token(claims));
      clients.push(c);
      return c;
    }

    it('support sees its read tools and create_ticket, not delete_records or run_sql', async () => {
      const support = await client({ sub: 'sam', team: 'support' });
      const { tools, nextCursor } = await support.listTools();
      assert.deepEqual(names(tools), ['search_docs', 'get_customer', 'create_ticket'], 'tools with required arguments stay listed: argument rules do not apply to a listing');
      assert.equal(nextCursor, undefined);
      // What is listed is what may be called, and the other way round.
      await assert.rejects(support.callTool({ name: 'run_sql', arguments: { query: 'select 1' } }), deniedWith(-32003));
      await assert.rejects(support.callTool({ name: 'delete_records', arguments: { table: 'a', where: 'id = 4' } }), deniedWith(-32003));
    });

    it('group dba sees delete_records; the same team without it does not', async () => {
      const payments = await client({ sub: 'alice', team: 'payments' });
      assert.deepEqual(names((await payments.listTools()).tools), ['search_docs', 'get_customer', 'create_ticket', 'run_sql']);
      const dba = await client({ sub: 'dora', team: 'payments', groups: ['dba'] });
      assert.deepEqual(names((await dba.listTools()).tools), ['search_docs', 'get_customer', 'create_ticket', 'delete_records', 'run_sql']);
    });

    it('keeps the SSE framing of a filtered answer intact, byte for byte outside the data line', async () => {
      const token = await mesh.token({ sub: 'sam', team: 'support' });
      const auth = { authorization: `Bearer ${token}` };
      const init = await rawPost(mesh.endpoints.mcp, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }), auth);
      assert.equal(init.status, 200, init.text);
      const session = { ...auth, 'mcp-session-id': init.headers.get('mcp-session-id')!, 'mcp-protocol-version': '2025-06-18' };
      const ack = await rawPost(mesh.endpoints.mcp, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), session);
      assert.equal(ack.status, 202, ack.text);
      const list = await rawPost(mesh.endpoints.mcp, JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }), session);
      assert.equal(list.status, 200, list.text);
      assert.match(list.headers.get('content-type') ?? '', /^text\/event-stream/);
      // One event, framed as the SDK server frames it: `event:` line, one `data:` line, blank line.
      const m = /^event: message\n(id: [^\n]*\n)?data: ([^\n]*)\n\n$/.exec(list.text);
      assert.ok(m, `SSE framing intact: ${JSON.stringify(list.text.slice(0, 200))}`);
      const msg = JSON.parse(m[2]!) as { id: number; result: { tools: Tool[] } };
      assert.equal(msg.id, 2);
      assert.deepEqual(names(msg.result.tools), ['search_docs', 'get_customer', 'create_ticket']);
    });

    it('gives tools/call the annotations the server declared in tools/list', async () => {
      const dba = await client({ sub: 'dora', team: 'payments', groups: ['dba'] });
      await dba.listTools();
      await dba.callTool({ name: 'delete_records', arguments: { table: 'sessions', where: 'expired_at < now()' } });
      await dba.callTool({ name: 'search_docs', arguments: { query: 'refund' } });
      const calls = decisions(state).filter((r) => r.identity.sub === 'dora' && r.mcp.method === 'tools/call');
      const of = (tool: string) => calls.find((r) => r.mcp.tool === tool)!.input!.mcp.annotations;
      assert.deepEqual(of('delete_records'), { destructiveHint: true, idempotentHint: true });
      assert.deepEqual(of('search_docs'), { readOnlyHint: true, openWorldHint: false });
      assert.equal(calls.find((r) => r.mcp.tool === 'delete_records')!.result.allow, true);
    });
  });

  describe('a paginating server and a policy on annotations and budgets', () => {
    const ann = (a: Tool['annotations']): Pick<Tool, 'annotations'> => (a ? { annotations: a } : {});
    const tool = (name: string, a?: Tool['annotations']): Tool => ({ name, description: `the ${name} tool`, inputSchema: { type: 'object' }, ...ann(a) });
    const PAGES: Record<string, ToolPage> = {
      '': { tools: [tool('lookup', { readOnlyHint: true }), tool('wipe', { destructiveHint: true }), tool('note', { readOnlyHint: false, destructiveHint: false })], nextCursor: 'p2' },
      p2: { tools: [tool('purge', { destructiveHint: true })], nextCursor: 'p3' },
      p3: { tools: [tool('mystery'), tool('peek', { readOnlyHint: true })] },
    };
    const QUOTA = 5000;
    // Interns may not use what the server marks destructive, nor tools it says nothing about; any
    // tool that is not read-only stops once a budget is 90% spent.
    const POLICY = `package tollgate.authz

default decision := {"allow": false, "reasons": ["no verified identity"]}

decision := {"allow": true, "reasons": []} if {
	input.identity.authenticated
	count(denials) == 0
}

decision := {"allow": false, "reasons": denials} if count(denials) > 0

tool_call if input.mcp.method == "tools/call"

destructive_or_unknown if input.mcp.annotations.destructiveHint == true

destructive_or_unknown if input.mcp.annotations == null

denials contains msg if {
	tool_call
	input.identity.team == "interns"
	destructive_or_unknown
	msg := sprintf("interns may not use %s: the server marks it destructive or declares nothing about it", [input.mcp.tool])
}

denials contains msg if {
	tool_call
	not input.mcp.annotations.readOnlyHint == true
	some b in input.budget.budgets
	b.remaining * 10 < b.limit
	msg := sprintf("budget %s has %d of %d tokens left: only read-only tools until it resets at %s", [b.name, b.remaining, b.limit, b.resets_at])
}
`;
    let state: string;
    let mesh: LocalMesh;
    let upstream: PagingMcpServer;
    const clients: Client[] = [];

    before(async () => {
      state = tempDir('paged-e2e');
      const policies = join(state, 'policy');
      mkdirSync(policies);
      writeFileSync(join(policies, 'authz.rego'), POLICY);
      const budgets = join(state, 'budgets.yaml');
      writeFileSync(budgets, `budgets:\n  - { name: quota-daily, scope: { team: quota }, limit: ${QUOTA}, window: day }\n`);
      const filler = 'The entry was written to the ledger and will appear in tomorrow\'s report. ';
      upstream = await new PagingMcpServer(PAGES, (name) => (name === 'note' ? `Noted. ${filler.repeat(8)}` : `${name}: done`)).start();
      mesh = await LocalMesh.start({
        policies, stateDir: state, ports: PORTS, echo, server: 'paged',
        upstream: { host: '127.0.0.1', port: upstream.port }, authzArgs: ['--budgets', budgets],
      });
    });

    after(async () => {
      for (const c of clients) await c.close().catch(() => undefined);
      await mesh?.stop();
      await upstream?.close();
      if (state) rmSync(state, { recursive: true, force: true });
    });

    async function client(claims: { sub: string; team?: string; groups?: string[] }): Promise<Client> {
      const c = await connectClient(mesh.endpoints.mcp, await mesh.token(claims));
      clients.push(c);
      return c;
    }

    const callsOf = (sub: string) => decisions(state).filter((r) => r.identity.sub === sub && r.mcp.method === 'tools/call');

    it('before the server has listed its tools, tools/call carries no annotations, and a policy relying on them refuses', async () => {
      const intern = await client({ sub: 'ian', team: 'interns' });
      await assert.rejects(intern.callTool({ name: 'lookup', arguments: {} }), deniedWith(-32003, /declares nothing about it/));
      assert.equal(callsOf('ian').at(-1)!.input!.mcp.annotations, null);
    });

    it('filters every page on its own and keeps nextCursor and _meta, so pagination still works', async () => {
      const intern = await client({ sub: 'ian', team: 'interns' });
      assert.deepEqual(await walk(intern), [
        [['lookup', 'note'], 'p2', { page: 'first' }],
        [[], 'p3', { page: 'p2' }], // every tool of this page hidden: an empty page, cursor kept
        [['peek'], undefined, { page: 'p3' }],
      ]);
      const ops = await client({ sub: 'olga', team: 'ops' });
      assert.deepEqual(await walk(ops), [
        [['lookup', 'wipe', 'note'], 'p2', { page: 'first' }],
        [['purge'], 'p3', { page: 'p2' }],
        [['mystery', 'peek'], undefined, { page: 'p3' }],
      ]);
    });

    it('gives tools/call the server\'s annotations, never the client\'s', async () => {
      const intern = await client({ sub: 'ian', team: 'interns' });
      const ok = await intern.callTool({ name: 'lookup', arguments: {} });
      assert.equal((ok.content as Array<{ text: string }>)[0]!.text, 'lookup: done');
      // A client claiming the tool is harmless changes nothing: annotations come from the server.
      const forged = intern.request({ method: 'tools/call', params: { name: 'wipe', arguments: {}, annotations: { readOnlyHint: true, destructiveHint: false } } }, CallToolResultSchema);
      await assert.rejects(forged, deniedWith(-32003, /interns may not use wipe/));
      const calls = callsOf('ian');
      assert.deepEqual(calls.find((r) => r.mcp.tool === 'lookup' && r.result.allow)!.input!.mcp.annotations, { readOnlyHint: true });
      const wipe = calls.find((r) => r.mcp.tool === 'wipe')!;
      assert.deepEqual((wipe.input!.mcp.params as { annotations: unknown }).annotations, { readOnlyHint: true, destructiveHint: false }, 'the forged claim was sent');
      assert.deepEqual(wipe.input!.mcp.annotations, { destructiveHint: true });
      const ops = await client({ sub: 'olga', team: 'ops' });
      await ops.callTool({ name: 'wipe', arguments: {} });
      assert.deepEqual(upstream.calls, ['lookup', 'wipe']);
    });

    it('lets a policy act on input.budget: write tools stop at 90% spent, in calls and in the list', async () => {
      const q = await client({ sub: 'quinn', team: 'quota' });
      let refusal: McpError | null = null;
      let notes = 0;
      for (let i = 0; i < 100 && !refusal; i++) {
        try {
          await q.callTool({ name: 'note', arguments: { text: 'x' } });
          notes++;
        } catch (e) {
          if (!(e instanceof McpError)) throw e;
          refusal = e;
        }
      }
      assert.ok(refusal, 'the policy stepped in within the loop');
      const r = refusal as McpError;
      // Refused by the policy (-32003), while the budget itself still had room (not -32004).
      assert.equal(r.code, -32003, r.message);
      const left = Number(/budget quota-daily has (\d+) of 5000 tokens left: only read-only tools/.exec(r.message)?.[1]);
      assert.ok(left > 0 && left * 10 < QUOTA, `${left} tokens left`);
      const rec = callsOf('quinn').at(-1)!;
      assert.equal(rec.input!.budget.budgets[0]!.remaining, left);
      // Read-only tools go on, and the list now hides what the caller can no longer use.
      await q.callTool({ name: 'lookup', arguments: {} });
      const pages = await walk(q);
      assert.deepEqual(pages.map((p) => p[0]), [['lookup'], [], ['peek']]);
      console.log(`      (${notes} note calls before the policy refused at ${left} of ${QUOTA} tokens left)`);
    });
  });
});
