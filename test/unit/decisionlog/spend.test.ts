import { strict as assert } from 'node:assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLogsCommand } from '../../../src/cli/logs.js';
import { accountingRecord } from '../../../src/decisionlog/accounting.js';
import { LogCursor, readEntriesOfFiles } from '../../../src/decisionlog/reader.js';
import { listLogFiles } from '../../../src/decisionlog/files.js';
import { parsePriceTable, priceFor, PriceTableError, SpendBuilder, spendCsv } from '../../../src/decisionlog/spend.js';
import { isAccounting, type ChainedLogEntry, type DecisionRecordDraft } from '../../../src/decisionlog/types.js';
import { sampleDraft, type SampleOptions } from './fixtures.js';
import { cleanupTempDirs, openSink, tempDir, verifyDir } from './helpers.js';

/**
 * Issue 16 "Spend" / issue 13 "tokens.response": response tokens enter the chain as accounting
 * records linked to their decision, and `logs stats --by` sums calls, tokens and cost.
 */

const account = (d: DecisionRecordDraft, response: number, request = 12) => accountingRecord({
  decisionId: d.decision_id, now: new Date(Date.parse(d.timestamp) + 5), instance: 'authz-1', version: '0.1.0',
  identity: { sub: d.identity.sub, team: d.identity.team, agent: d.identity.agent },
  server: d.mcp.server, namespace: d.mcp.namespace, method: d.mcp.method, tool: d.mcp.tool, requestTokens: request, responseTokens: response,
});

const PRICES = {
  currency: 'EUR',
  prices: [
    { server: '*', input_per_1k: 0.001, output_per_1k: 0.002 },
    { server: 'billing', input_per_1k: 0.01, output_per_1k: 0.02 },
    { server: 'billing', tool: 'delete_records', input_per_1k: 1, output_per_1k: 2 },
  ],
};

async function cli(args: string[], now = new Date('2025-01-02T00:00:00Z')): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await createLogsCommand({ out: (s) => { out += s; }, err: (s) => { err += s; }, env: {}, now: () => now }).run(args);
  return { code, out, err };
}

/** A log of decisions, each allowed one followed by its accounting record, as authz writes them. */
function writeLog(calls: Array<SampleOptions & { out?: number }>): string {
  const dir = join(tempDir(), 'decisions');
  const sink = openSink(dir, { checkpointEvery: 4 });
  calls.forEach((c, k) => {
    const d = sampleDraft({ ...c, i: k + 1 });
    sink.append(d);
    if (d.result.allow) sink.account(account(d, c.out ?? 100));
  });
  void sink.close();
  return dir;
}

describe('decision log accounting and spend (issue 16)', () => {
  after(cleanupTempDirs);

  it('accounting records share the hash chain: verify covers them, the decision readers skip them', async () => {
    const dir = writeLog([{ team: 'payments' }, { allow: false }, { team: 'support', out: 7 }]);
    const r = await verifyDir(dir);
    assert.equal(r.ok, true, JSON.stringify(r.findings));
    assert.equal(r.records, 5, '3 decisions + 2 accounting records, one chain');
    const all: ChainedLogEntry[] = [...readEntriesOfFiles(listLogFiles(dir))].map((e) => e.record);
    assert.deepEqual(all.map((e) => e.seq), [1, 2, 3, 4, 5]);
    const acc = all.filter(isAccounting);
    assert.deepEqual(acc.map((a) => [a.decision_id, a.tokens.response]), [[all[0]!.decision_id, 100], [all[3]!.decision_id, 7]]);
    assert.deepEqual(new LogCursor(dir).read(100).map((x) => x.record.seq), [1, 3, 4], 'decision readers see decisions only');
    // An edited accounting record breaks the chain like any record.
    const file = listLogFiles(dir)[0]!.path;
    const text = (await import('node:fs')).readFileSync(file, 'utf8').replace('"response":7', '"response":1');
    writeFileSync(file, text);
    const broken = await verifyDir(dir);
    assert.ok(broken.findings.some((f) => f.kind === 'edited' && f.seq === 5), JSON.stringify(broken.findings));
  });

  it('prices: the most specific rule wins; bad tables are clear errors', () => {
    const t = parsePriceTable(PRICES);
    assert.deepEqual(priceFor(t, 'billing', 'delete_records'), { inputPer1k: 1, outputPer1k: 2, priced: true });
    assert.deepEqual(priceFor(t, 'billing', 'search'), { inputPer1k: 0.01, outputPer1k: 0.02, priced: true });
    assert.deepEqual(priceFor(t, 'docs', 'search'), { inputPer1k: 0.001, outputPer1k: 0.002, priced: true });
    assert.equal(priceFor(parsePriceTable({ prices: [{ server: 'x', input_per_1k: 1 }] }), 'y', null).priced, false);
    assert.throws(() => parsePriceTable({ prices: [{ server: 'x', input_per_1k: -1 }] }), PriceTableError);
    assert.throws(() => parsePriceTable({ prices: [{ model: 'x' }] }), /unknown field "model"/);
    assert.throws(() => parsePriceTable({ currency: 'USD' }), /prices/);
  });

  it('sums calls, tokens in/out and cost per group; CSV quotes what needs quoting', () => {
    const b = new SpendBuilder(['team', 'tool'], parsePriceTable(PRICES));
    const d1 = sampleDraft({ i: 1, team: 'pay,ments', tool: 'delete_records' });
    const d2 = sampleDraft({ i: 2, team: 'pay,ments', tool: 'delete_records', allow: false });
    const d3 = sampleDraft({ i: 3, team: 'support', tool: 'search', server: 'docs' });
    for (const [d, out] of [[d1, 1000], [d2, 0], [d3, 500]] as const) {
      b.add({ ...d, seq: 1, prev_hash: '0'.repeat(64) });
      if (d.result.allow) b.add({ ...account(d, out, 500), seq: 2, prev_hash: '0'.repeat(64) });
    }
    const r = b.result();
    assert.equal(r.currency, 'EUR');
    assert.deepEqual(r.rows.map((x) => [x.group, x.calls, x.allowed, x.denied, x.tokensIn, x.tokensOut, Number(x.cost.toFixed(6))]), [
      [{ team: 'pay,ments', tool: 'delete_records' }, 2, 1, 1, 500, 1000, 2.5],
      [{ team: 'support', tool: 'search' }, 1, 1, 0, 500, 500, 0.0015],
    ]);
    assert.equal(r.total.calls, 3);
    assert.equal(Number(r.total.cost.toFixed(6)), 2.5015);
    assert.equal(spendCsv(r), 'team,tool,calls,allowed,denied,tokens_in,tokens_out,cost_eur\r\n"pay,ments",delete_records,2,1,1,500,1000,2.5\r\n' +
      'support,search,1,1,0,500,500,0.0015\r\n');
  });

  it('`logs stats --by team,tool --since 30d --prices` as table, JSON and CSV; `query --json --accounting` pairs records', async () => {
    const dir = writeLog([
      { team: 'payments', tool: 'delete_records', out: 2000 }, { team: 'payments', tool: 'search', out: 300 },
      { team: 'support', tool: 'delete_records', allow: false }, { team: 'support', tool: 'search', out: 50 },
    ]);
    const prices = join(tempDir(), 'prices.yaml');
    writeFileSync(prices, 'currency: EUR\nprices:\n  - server: "*"\n    input_per_1k: 0.001\n    output_per_1k: 0.002\n  - server: billing\n    tool: delete_records\n    input_per_1k: 1\n    output_per_1k: 2\n');
    const table = await cli(['stats', '--dir', dir, '--by', 'team,tool', '--since', '30d', '--prices', prices]);
    assert.equal(table.code, 0, table.err);
    assert.match(table.out, /^TEAM\s+TOOL\s+CALLS\s+ALLOWED\s+DENIED\s+TOKENS IN\s+TOKENS OUT\s+COST \(EUR\)$/m);
    assert.match(table.out, /^payments\s+delete_records\s+1\s+1\s+0\s+12\s+2000\s+4\.012$/m);
    assert.match(table.out, /^support\s+delete_records\s+1\s+0\s+1\s+0\s+0\s+0$/m);
    assert.match(table.out, /^TOTAL\s+4\s+3\s+1\s+36\s+2350\s+4\.012724$/m);

    const json = JSON.parse((await cli(['stats', '--dir', dir, '--by', 'team', '--json', '--prices', prices])).out) as { rows: Array<{ group: { team: string }; tokensOut: number }> };
    assert.deepEqual(json.rows.map((x) => [x.group.team, x.tokensOut]), [['payments', 2300], ['support', 50]]);
    const csv = await cli(['stats', '--dir', dir, '--by', 'tool', '--csv']);
    assert.match(csv.out, /^tool,calls,allowed,denied,tokens_in,tokens_out,cost_usd\r\n/);

    // Filters apply to the decision, and its accounting record follows it.
    const team = await cli(['stats', '--dir', dir, '--by', 'tool', '--team', 'support', '--json']);
    assert.deepEqual((JSON.parse(team.out) as { total: { calls: number; tokensOut: number } }).total, { calls: 2, allowed: 1, denied: 1, tokensIn: 12, tokensOut: 50, cost: 0 });

    const q = await cli(['query', '--dir', dir, '--json', '--accounting', '--team', 'payments']);
    const lines = q.out.trim().split('\n').map((l) => JSON.parse(l) as { schema: string; decision_id: string });
    assert.deepEqual(lines.map((l) => l.schema), ['tollgate.decision/v1', 'tollgate.accounting/v1', 'tollgate.decision/v1', 'tollgate.accounting/v1']);
    assert.equal(lines[0]!.decision_id, lines[1]!.decision_id);
    const plain = await cli(['query', '--dir', dir, '--json']);
    assert.equal(plain.out.trim().split('\n').length, 4, 'without --accounting, decisions only (unchanged output)');

    for (const bad of [['--by', 'colour'], ['--by', 'team', '--json', '--csv'], ['--csv'], ['--by', 'team', '--prices', join(dir, 'nope.yaml')]]) {
      const r = await cli(['stats', '--dir', dir, ...bad]);
      assert.equal(r.code, 2, `${bad.join(' ')}: ${r.out}${r.err}`);
    }
  });
});
