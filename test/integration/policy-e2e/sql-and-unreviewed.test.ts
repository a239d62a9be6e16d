import { strict as assert } from 'node:assert';
import { rmSync } from 'node:fs';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import { LocalMesh } from '../../../src/mesh/local.js';
import { connectClient } from '../../support/mcp-client.js';
import { decisions, PagingMcpServer, tempDir } from '../budget-e2e/support.js';
import { authzTimeoutMs, echo, refusedWith } from './support.js';

const PORTS = { envoy: 0, envoyAdmin: 0, authz: 0, issuer: 0 };

/**
 * Issue 10, items 7 and 9, through the real mesh (Envoy, authz, the example policies): run_sql is
 * judged by PostgreSQL's parser in the host builtin, and a tool the catalogue does not list is
 * hidden and refused whatever the server declares about it.
 */
describe('example policy through the mesh: SQL parser guard and unreviewed tools (issue 10)', function () {
  this.timeout(90_000);

  describe('run_sql on the demo server', () => {
    let state: string;
    let mesh: LocalMesh;
    let payments: Client;

    before(async () => {
      state = tempDir('sql-e2e');
      mesh = await LocalMesh.start({ policies: 'policies', stateDir: state, ports: PORTS, echo, authzTimeoutMs });
      payments = await connectClient(mesh.endpoints.mcp, await mesh.token({ sub: 'alice', team: 'payments' }));
    });
    after(async () => {
      await payments?.close().catch(() => undefined);
      await mesh?.stop();
      if (state) rmSync(state, { recursive: true, force: true });
    });

    const EXPLOITS: Array<[string, RegExp]> = [
      [`SELECT 1 AS "'" ; DELETE FROM orders ; -- '`, /it has 2 statements/],
      [`SELECT $$'$$ ; DELETE FROM orders ; -- '`, /it has 2 statements/],
      [`SELECT 'a\\' ; DELETE FROM orders ; -- '`, /it has 2 statements/],
      ["SELECT '\\'\n' ; DELETE FROM orders ; -- '", /standard_conforming_strings/],
      ["SELECT dblink_exec('host=db', 'DELETE FROM orders')", /dblink_exec\(\), which is not on the list of allowed functions/],
      ['SELECT pg_sleep(30)', /pg_sleep\(\)/],
      ["SELECT lo_import('/etc/passwd')", /lo_import\(\)/],
      ['WITH gone AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM gone', /contains a DELETE statement/],
      ['SELEC 1', /cannot be analysed: it does not parse as PostgreSQL/],
    ];

    it('refuses every exploit string of the issue, with the reason, and none reaches the server', async () => {
      for (const [query, why] of EXPLOITS) {
        await assert.rejects(payments.callTool({ name: 'run_sql', arguments: { query } }), refusedWith(why), query);
      }
      assert.deepEqual(mesh.demo!.calls.filter((c) => c.tool === 'run_sql'), []);
      const refused = decisions(state).filter((r) => r.mcp.tool === 'run_sql');
      assert.equal(refused.length, EXPLOITS.length);
      assert.ok(refused.every((r) => r.result.allow === false));
    });

    it('lets a harmless read through, including a semicolon in a quoted identifier', async () => {
      for (const query of ['SELECT "weird;col" FROM orders', "SELECT count(*) FROM orders WHERE note = 'a; b' -- note"]) {
        const r = await payments.callTool({ name: 'run_sql', arguments: { query } });
        assert.notEqual(r.isError, true, query);
      }
      assert.deepEqual(mesh.demo!.calls.filter((c) => c.tool === 'run_sql').map((c) => c.args.query), ['SELECT "weird;col" FROM orders', "SELECT count(*) FROM orders WHERE note = 'a; b' -- note"]);
    });
  });

  describe('a server that starts offering a tool nobody reviewed', () => {
    let state: string;
    let mesh: LocalMesh;
    let upstream: PagingMcpServer;
    const clients: Client[] = [];
    const tool = (name: string, annotations: Tool['annotations']): Tool => ({ name, description: `the ${name} tool`, inputSchema: { type: 'object' }, annotations });

    before(async () => {
      state = tempDir('unreviewed-e2e');
      upstream = await new PagingMcpServer({
        '': { tools: [tool('search_docs', { readOnlyHint: true }), tool('export_ledger', { readOnlyHint: false, destructiveHint: false })] },
      }, (name) => `ran ${name}`).start();
      mesh = await LocalMesh.start({ policies: 'policies', stateDir: state, ports: PORTS, echo, authzTimeoutMs, upstream: { host: '127.0.0.1', port: upstream.port }, server: 'demo' });
    });
    after(async () => {
      for (const c of clients) await c.close().catch(() => undefined);
      await mesh?.stop();
      await upstream?.close();
      if (state) rmSync(state, { recursive: true, force: true });
    });

    it('hides it from tools/list and refuses a call of it, saying it awaits review', async () => {
      for (const claims of [{ sub: 'alice', team: 'payments' }, { sub: 'dora', team: 'payments', groups: ['dba'] }]) {
        const c = await connectClient(mesh.endpoints.mcp, await mesh.token(claims));
        clients.push(c);
        assert.deepEqual((await c.listTools()).tools.map((t) => t.name), ['search_docs'], claims.sub);
        await assert.rejects(c.callTool({ name: 'export_ledger', arguments: {} }), refusedWith(/Tool export_ledger of server demo has not been reviewed/));
      }
      assert.deepEqual(upstream.calls, []);
      const rec = decisions(state).find((r) => r.mcp.tool === 'export_ledger')!;
      // The server's claim reached the policy, and did not sway it.
      assert.deepEqual(rec.input!.mcp.annotations, { readOnlyHint: false, destructiveHint: false });
      assert.equal(rec.result.allow, false);
    });
  });
});
