import { strict as assert } from 'node:assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { listLogFiles } from '../../../src/decisionlog/files.js';
import { readEntriesOfFiles } from '../../../src/decisionlog/reader.js';
import { isAccounting, type ChainedAccountingRecord } from '../../../src/decisionlog/types.js';
import { eventually, RawSession, startMesh, tollgateLogs, type TestMesh } from './support.js';

/**
 * Issue 16 "Spend" through the mesh: the results that flow back through Envoy's ext_proc are
 * counted and written to the chain as accounting records linked to their decisions, and
 * `tollgate logs stats --by team,tool --since 30d --prices FILE` reports calls, tokens and cost.
 *
 * Cost: ~10 s.
 */
describe('decision log end to end: response tokens and spend per team and tool', function () {
  this.timeout(120_000);
  let t: TestMesh;

  before(async () => { t = await startMesh('dlog-spend'); });
  after(async () => { await t?.dispose(); });

  it('each allowed call gets an accounting record with its response tokens; stats --by sums them with prices', async () => {
    const { mesh } = t;
    const alice = await RawSession.open(mesh.endpoints.mcp, await mesh.token({ sub: 'alice', team: 'payments' }), 'alice');
    const sam = await RawSession.open(mesh.endpoints.mcp, await mesh.token({ sub: 'sam', team: 'support' }), 'sam');
    for (let n = 0; n < 3; n++) assert.equal((await alice.call(`a-${n}`, 'search_docs', { query: `refund policy ${n}` })).kind, 'allowed');
    assert.equal((await sam.call('s-0', 'search_docs', { query: 'shipping' })).kind, 'allowed');
    assert.equal((await sam.call('s-deny', 'delete_records', { table: 'x', where: 'true' })).kind, 'denied');

    // The accounting record is written once the response has been counted (after the answer).
    const accounting = await eventually(async () => {
      const acc = [...readEntriesOfFiles(listLogFiles(t.logDir))].map((e) => e.record).filter(isAccounting)
        .filter((a) => a.mcp.tool === 'search_docs');
      return acc.length >= 4 ? acc : null;
    }, 'four accounting records', 20_000);
    const decisions = [...readEntriesOfFiles(listLogFiles(t.logDir))].map((e) => e.record).filter((r) => !isAccounting(r));
    for (const a of accounting as ChainedAccountingRecord[]) {
      const d = decisions.find((r) => r.decision_id === a.decision_id);
      assert.ok(d, `accounting ${a.decision_id} links to a decision`);
      assert.ok(a.seq > d.seq, 'written after its decision');
      assert.ok(a.tokens.response > 0, `response tokens counted: ${JSON.stringify(a.tokens)}`);
      assert.equal(a.identity.team, d.identity.team);
    }

    const prices = join(t.scratch, 'prices.yaml');
    writeFileSync(prices, 'currency: USD\nprices:\n  - tool: search_docs\n    input_per_1k: 0.5\n    output_per_1k: 1.5\n');
    const s = await tollgateLogs(['stats', '--dir', t.logDir, '--by', 'team,tool', '--since', '30d', '--prices', prices, '--json']);
    assert.equal(s.code, 0, s.err);
    const report = JSON.parse(s.out) as { rows: Array<{ group: { team: string; tool: string }; calls: number; denied: number; tokensOut: number; cost: number }> };
    const row = (team: string, tool: string) => report.rows.find((r) => r.group.team === team && r.group.tool === tool);
    const outFor = (team: string): number => accounting.filter((a) => a.identity.team === team).reduce((n, a) => n + a.tokens.response, 0);
    assert.equal(row('payments', 'search_docs')?.calls, 3);
    assert.equal(row('payments', 'search_docs')?.tokensOut, outFor('payments'));
    assert.ok((row('payments', 'search_docs')?.cost ?? 0) >= outFor('payments') / 1000 * 1.5);
    assert.equal(row('support', 'delete_records')?.denied, 1);
    const csv = await tollgateLogs(['stats', '--dir', t.logDir, '--by', 'team,tool', '--prices', prices, '--csv']);
    assert.match(csv.out, /^team,tool,calls,allowed,denied,tokens_in,tokens_out,cost_usd\r\n/);
    assert.match(csv.out, new RegExp(`\\r\\npayments,search_docs,3,3,0,\\d+,${outFor('payments')},`));

    const v = await tollgateLogs(['verify', t.logDir]);
    assert.equal(v.code, 0, v.out);
  });
});
