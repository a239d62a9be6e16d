import { strict as assert } from 'node:assert';
import type { DecisionRecordDraft } from '../../../src/decisionlog/types.js';
import { bareInputUses, depsInputRefs, mayRead } from '../../../src/toolkit/input-deps.js';
import { canonicalField, classify, hiddenFieldsRead, ReplayAggregator, skipReason } from '../../../src/toolkit/replay.js';
import type { Decision, PolicyInput } from '../../../src/contract/policy.js';
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { listLogFiles } from '../../../src/decisionlog/files.js';
import { SkippedLines } from '../../../src/decisionlog/lines.js';
import { readLogRecords } from '../../../src/toolkit/replay-run.js';
import { cleanupTempDirs, fill, mutateRecord, openSink, tempDir } from '../decisionlog/helpers.js';

function record(o: { id: string; allow: boolean; reasons?: string[]; tool?: string; team?: string | null; code?: number | null; input?: boolean; erased?: string[]; masked?: string[]; revision?: string }): DecisionRecordDraft {
  return {
    schema: 'tollgate.decision/v1', decision_id: o.id, timestamp: '2026-11-23T10:00:00.000Z', trace_id: null,
    labels: { id: 'a', app: 'tollgate', version: '0', instance: 'a' }, path: 'tollgate/authz/decision', bundles: { tollgate: { revision: o.revision ?? 'old' } },
    identity: { sub: 'alice', iss: 'i', team: o.team === undefined ? 'payments' : o.team, agent: null, delegation: [] },
    mcp: { server: 'demo', namespace: 'default', method: 'tools/call', tool: o.tool ?? 'run_sql', id: 1, session_id: null, batch_size: null },
    input: o.input === false ? null : ({ mcp: {} } as PolicyInput),
    result: { allow: o.allow, reasons: o.reasons ?? [], http_status: o.allow ? 200 : 200, code: o.code ?? (o.allow ? null : -32003), error: null },
    budget: null, tokens: null, metrics: { timer_eval_ns: 0, timer_total_ns: 0 }, erased: o.erased ?? [], masked: o.masked ?? [],
  };
}

const decision = (allow: boolean, reasons: string[] = []): Decision => ({ allow, reasons, headers: {}, httpStatus: null, mask: [], cost: null });
const READS_MCP = [['mcp'], ['identity', 'team']];

describe('replay: classifying recorded decisions', () => {
  it('tells newly denied, newly allowed and unchanged apart', () => {
    assert.equal(classify(record({ id: 'a', allow: true }), decision(false, ['no']), READS_MCP, 'new').outcome, 'newly_denied');
    assert.equal(classify(record({ id: 'b', allow: false, reasons: ['x'] }), decision(true), READS_MCP, 'new').outcome, 'newly_allowed');
    const same = classify(record({ id: 'c', allow: false, reasons: ['x'] }), decision(false, ['y']), READS_MCP, 'new');
    assert.deepEqual([same.outcome, same.reasonsChanged, same.uncertain], ['unchanged', true, null]);
  });

  it('marks results uncertain where masking hid a field the new policy may read', () => {
    const argMasked = record({ id: 'd', allow: true, masked: ['/input/mcp/arguments/api_key', '/input/mcp/params/arguments/api_key', '/input/parsed_body/params/arguments/api_key'] });
    // A masked argument the policy may read: uncertain even when the decision does not change.
    assert.deepEqual(classify(argMasked, decision(true), READS_MCP, 'new').uncertain, ['/input/mcp/arguments/api_key']);
    // The policy does not read arguments (only input.mcp.tool): certain.
    assert.equal(classify(argMasked, decision(true), [['mcp', 'tool']], 'new').uncertain, null);
    // A masked non-argument field matters only when the decision changed.
    const claims = record({ id: 'e', allow: true, erased: ['/input/identity/claims/email'] });
    assert.equal(classify(claims, decision(true), [['identity']], 'new').uncertain, null);
    assert.deepEqual(classify(claims, decision(false, ['x']), [['identity']], 'new').uncertain, ['/input/identity/claims/email']);
    assert.equal(classify(claims, decision(false, ['x']), [['identity', 'team']], 'new').uncertain, null);
    // The same revision decided it: the recorded result stands, masked or not.
    const same = classify(record({ id: 'f', allow: true, revision: 'r1', masked: ['/input/mcp/arguments/x'] }), decision(false), READS_MCP, 'r1');
    assert.deepEqual([same.outcome, same.uncertain, same.sameRevision], ['unchanged', null, true]);
  });

  it('folds the copies of a masked argument onto input.mcp.arguments', () => {
    assert.deepEqual(canonicalField(['parsed_body', '2', 'params', 'arguments', 'a', 'b']), { tokens: ['mcp', 'arguments', 'a', 'b'], argument: true });
    assert.deepEqual(canonicalField(['attributes', 'request', 'http', 'headers', 'x-key']), { tokens: ['request', 'headers', 'x-key'], argument: false });
    assert.deepEqual(hiddenFieldsRead({ erased: ['/input/attributes/request/http/body', '/input/request/headers/cookie'], masked: ['not a pointer'] }, [['request', 'headers']]),
      { fields: ['/input/request/headers/cookie'], argument: false });
    assert.ok(mayRead([], ['a', 'b']));
    assert.ok(mayRead(['a', 'b', 'c'], ['a', 'b']));
    assert.ok(!mayRead(['a', 'x'], ['a', 'b']));
  });

  it('skips records without a policy decision, saying why', () => {
    assert.equal(skipReason(record({ id: 'g', allow: false, input: false, code: -32001 })), 'refused before policy: missing or invalid token');
    assert.equal(skipReason(record({ id: 'h', allow: false, code: -32004 })), 'decided by a token budget before policy');
    assert.equal(skipReason(record({ id: 'i', allow: true })), null);
  });

  it('aggregates counts, groups by tool, team and reason, with example ids', () => {
    const agg = new ReplayAggregator(2);
    for (const [id, team] of [['1', 'payments'], ['2', 'payments'], ['3', 'support']] as const) {
      agg.add(classify(record({ id, allow: true, team }), decision(false, ['queries need approval']), READS_MCP, 'new'));
    }
    agg.add(classify(record({ id: '4', allow: false, reasons: ['old rule'], tool: 'search_docs', team: null }), decision(true), READS_MCP, 'new'));
    agg.add(classify(record({ id: '5', allow: true }), decision(true), READS_MCP, 'new'));
    agg.add(classify(record({ id: '6', allow: true, masked: ['/input/mcp/arguments/q'] }), decision(false), READS_MCP, 'new'));
    agg.skip(record({ id: '7', allow: false, input: false, code: -32001 }), 'refused before policy: missing or invalid token');
    const r = agg.result();
    assert.deepEqual([r.total, r.replayed, r.newlyDenied.count, r.newlyAllowed.count, r.unchanged, r.uncertain.count, r.skipped.count], [7, 6, 3, 1, 1, 1, 1]);
    assert.deepEqual(r.newlyDenied.byTeam, [{ key: 'payments', count: 2, examples: ['1', '2'] }, { key: 'support', count: 1, examples: ['3'] }]);
    assert.deepEqual(r.newlyDenied.byTool, [{ key: 'demo/run_sql', count: 3, examples: ['1', '2'] }]);
    assert.deepEqual(r.newlyDenied.byReason, [{ key: 'queries need approval', count: 3, examples: ['1', '2'] }]);
    assert.deepEqual(r.newlyAllowed.byReason, [{ key: 'old rule', count: 1, examples: ['4'] }]);
    assert.deepEqual(r.newlyAllowed.byTeam, [{ key: '(no team)', count: 1, examples: ['4'] }]);
    assert.deepEqual(r.uncertain.byField, [{ key: '/input/mcp/arguments/q', count: 1, examples: ['6'] }]);
    assert.equal(r.uncertain.cases[0]!.decisionId, '6');
  });
});

describe('replay: what a policy reads from input', () => {
  const ref = (...parts: Array<[string, unknown]>) => parts.map(([type, value]) => ({ type, value }));

  it('takes input refs from opa deps, cut at the first non-constant part', () => {
    assert.deepEqual(depsInputRefs({
      base: [ref(['var', 'data'], ['string', 'cfg']), ref(['var', 'input'], ['string', 'mcp'], ['var', 'x'], ['string', 'y']), ref(['var', 'input'])],
    }), [['mcp'], []]);
    assert.deepEqual(depsInputRefs({}), []);
  });

  it('narrows object.get(input, CONSTANT, _) and notices other bare uses', () => {
    const objectGet = { type: 'ref', value: ref(['var', 'object'], ['string', 'get']) };
    const get = (path: unknown) => ({ type: 'call', value: [objectGet, { type: 'ref', value: ref(['var', 'input']) }, path, { type: 'array', value: [] }] });
    const narrowed = bareInputUses({ rules: [{ head: { value: get({ type: 'array', value: ref(['string', 'budget'], ['string', 'budgets']) }) } }, { body: [get({ type: 'string', value: 'mcp' })] }] });
    assert.deepEqual(narrowed, { paths: [['budget', 'budgets'], ['mcp']], unexplained: false });
    assert.equal(bareInputUses({ rules: [{ body: [{ type: 'call', value: [{ type: 'ref', value: ref(['var', 'walk']) }, { type: 'ref', value: ref(['var', 'input']) }] }] }] }).unexplained, true);
    assert.equal(bareInputUses({ rules: [get({ type: 'var', value: 'k' })] }).unexplained, true);
  });
});

describe('replay: reading the recorded decisions', () => {
  after(cleanupTempDirs);

  const all = async (it: AsyncIterable<DecisionRecordDraft>): Promise<string[]> => {
    const out: string[] = [];
    for await (const r of it) out.push(r.decision_id);
    return out;
  };

  it('skips records with a field of the wrong type and lines that are no records, counting them with file:line', async () => {
    const dir = join(tempDir(), 'decisions');
    const sink = openSink(dir);
    fill(sink, 4);
    await sink.close();
    const f = listLogFiles(dir)[0]!;
    const line = mutateRecord(f.path, 2, (r) => { r.result = 'x'; });
    appendFileSync(f.path, '\u0000garbage\n');
    const skipped = new SkippedLines();
    const ids = await all(readLogRecords({ kind: 'path', path: dir }, null, skipped));
    assert.deepEqual(ids.map((id) => Number(id.slice(-2))), [1, 3, 4]);
    assert.match(skipped.report()!, new RegExp(`^skipped 1 malformed record \\(${f.name}:${line}: result: expected an object\\) and 1 unreadable line \\(${f.name}:\\d+: not valid JSON`));
  });

  it('a file in which no line is a line of a decision log is an error, not an empty log', async () => {
    const path = join(tempDir(), 'decisions-000001.jsonl');
    writeFileSync(path, 'GIF89a\n\u0001\u0002\n');
    await assert.rejects(all(readLogRecords({ kind: 'path', path }, null)), /holds no decision log: none of its 2 line\(s\) is a decision record, checkpoint or file head \(decisions-000001\.jsonl:1: not valid JSON/);
  });
});
