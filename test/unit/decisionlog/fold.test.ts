import { strict as assert } from 'node:assert';
import { canonicalize } from '../../../src/decisionlog/canonical.js';
import { FOLD_MIN_BODY_BYTES, foldInput, jsonEqual, unfoldRecord } from '../../../src/decisionlog/fold.js';
import { RECORD_COLUMNS, recordRow } from '../../../src/decisionlog/format.js';
import { listLogFiles } from '../../../src/decisionlog/files.js';
import { parseLine } from '../../../src/decisionlog/lines.js';
import { maskInput } from '../../../src/decisionlog/mask.js';
import type { ChainedDecisionRecord, DecisionRecordDraft } from '../../../src/decisionlog/types.js';
import { toOcsfApiActivity } from '../../../src/siem/ocsf.js';
import type { PolicyInput } from '../../../src/contract/policy.js';
import { sampleDraft, sampleInput } from './fixtures.js';
import { cleanupTempDirs, errors, fileLines, openSink, tempDir, verifyDir, writeLines } from './helpers.js';

type Obj = Record<string, unknown>;
const at = (v: unknown, ...path: string[]): unknown => path.reduce<unknown>((o, k) => (o as Obj | undefined)?.[k], v);

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const k of Object.keys(v)) deepFreeze((v as Obj)[k]);
  }
  return v;
}

/** A draft as authz builds it: masked, then folded. */
function foldedDraft(i: number, args: Obj, policyMask?: unknown): { draft: DecisionRecordDraft; masked: PolicyInput } {
  const masked = maskInput(sampleInput(args), [], policyMask).input;
  const f = foldInput(masked);
  return { draft: { ...sampleDraft({ i }), input: f.input, ...(f.folded.length > 0 ? { folded: f.folded } : {}) }, masked };
}

const chainedLines = (dir: string): string[] => fileLines(listLogFiles(dir)[0]!.path);
const recordOf = (line: string): ChainedDecisionRecord => {
  const p = parseLine(line);
  assert.equal(p.kind, 'record');
  return (p as { record: ChainedDecisionRecord }).record;
};

describe('decision log folding of duplicate input copies', () => {
  after(cleanupTempDirs);

  it('keeps one copy of the arguments, the params and the headers, and unfolding gives back the masked input exactly', () => {
    const masked = maskInput(sampleInput({ query: 'weather '.repeat(200), nested: { a: [1, 2, { b: 'c' }] } }), [], undefined).input;
    const before = JSON.stringify(masked);
    const f = foldInput(masked);
    assert.deepEqual(f.folded, [
      { path: '/input/mcp/params/arguments', from: '/input/mcp/arguments' },
      { path: '/input/parsed_body/params', from: '/input/mcp/params' },
      { path: '/input/attributes/request/http/headers', from: '/input/request/headers' },
    ]);
    assert.equal(at(f.input, 'mcp', 'params', 'arguments'), undefined);
    assert.equal(at(f.input, 'mcp', 'params', 'name'), 'search', 'only the folded member is left out');
    assert.equal(at(f.input, 'parsed_body', 'params'), undefined);
    assert.equal(at(f.input, 'parsed_body', 'method'), 'tools/call');
    assert.equal(at(f.input, 'attributes', 'request', 'http', 'headers'), undefined);
    assert.equal(at(f.input, 'attributes', 'request', 'http', 'method'), 'POST');
    assert.equal(JSON.stringify(masked), before, 'the masked input the request path holds is not changed');
    const back = unfoldRecord({ input: f.input, folded: f.folded });
    assert.deepStrictEqual(back.input, masked);
    assert.ok(!('folded' in back), 'an unfolded record no longer claims folds');
    assert.ok(canonicalize(f.input).length < canonicalize(masked).length * 0.5, 'the written input holds the 1.6 KB argument once, not three times');
  });

  it('writes small calls unfolded: below FOLD_MIN_BODY_BYTES folding costs more than it saves', () => {
    const withSize = (args: Obj, size: number): PolicyInput => {
      const input = maskInput(sampleInput(args), [], undefined).input;
      const http = at(input, 'attributes', 'request', 'http') as Obj;
      return { ...input, attributes: { request: { http: { ...http, size } } } };
    };
    const small = withSize({ q: 'x' }, 200);
    assert.deepEqual(foldInput(small, FOLD_MIN_BODY_BYTES), { input: small, folded: [] });
    const large = withSize({ q: 'x'.repeat(5000) }, 5200);
    assert.equal(foldInput(large, FOLD_MIN_BODY_BYTES).folded.length, 3);
    assert.equal(foldInput(small).folded.length, 3, 'without a minimum every call is folded');
  });

  it('does not mutate a frozen input (copies are made on the way to what is left out)', () => {
    const input = deepFreeze(maskInput(sampleInput({ q: 'x' }), [], undefined).input);
    const f = foldInput(input);
    assert.equal(f.folded.length, 3);
    assert.deepStrictEqual(unfoldRecord({ input: f.input, folded: f.folded }).input, input);
  });

  it('does not fold a copy that masking made different from the one it would be restored from', () => {
    // A policy mask rule naming only the parsed_body copy: that copy differs and must be written as it is.
    const rule = '/input/parsed_body/params/arguments/query';
    const masked = maskInput(sampleInput({ query: 'secret thing' }), [], [rule]).input;
    assert.equal(at(masked, 'parsed_body', 'params', 'arguments', 'query'), undefined);
    assert.equal(at(masked, 'mcp', 'arguments', 'query'), 'secret thing');
    const f = foldInput(masked);
    assert.ok(!f.folded.some((x) => x.path === '/input/parsed_body/params'), JSON.stringify(f.folded));
    assert.deepEqual(at(f.input, 'parsed_body', 'params', 'arguments'), {}, 'the erased field stays erased in the record');
    assert.deepStrictEqual(unfoldRecord({ input: f.input, folded: f.folded }).input, masked);
  });

  it('leaves a batch body alone: its elements are not the copy mcp.params is', () => {
    const message = { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'search', arguments: { q: 'x' } } };
    const input = maskInput(sampleInput({ q: 'x' }, { body: [message, { ...message, id: 8 }], batch: { index: 0, size: 2 } }), [], undefined).input;
    const f = foldInput(input);
    assert.ok(!f.folded.some((x) => x.path.startsWith('/input/parsed_body')), JSON.stringify(f.folded));
    assert.deepStrictEqual(unfoldRecord({ input: f.input, folded: f.folded }).input, input);
  });

  it('jsonEqual compares JSON values structurally, ignoring undefined members as JSON does', () => {
    assert.ok(jsonEqual({ a: [1, { b: null }], c: undefined }, { a: [1, { b: null }] }));
    assert.ok(!jsonEqual({ a: [1, 2] }, { a: [2, 1] }));
    assert.ok(!jsonEqual({ a: 1 }, { a: 1, b: 2 }));
    assert.ok(!jsonEqual([], {}));
    assert.ok(!jsonEqual({ a: '1' }, { a: 1 }));
  });

  it('refuses a folded list it cannot follow, with a message naming the entry', () => {
    const input = { mcp: { arguments: { q: 1 } } };
    assert.throws(() => unfoldRecord({ input, folded: 'x' }), /"folded" is not a list/);
    assert.throws(() => unfoldRecord({ input, folded: [{ path: '/input/a' }] }), /"folded"\[0\] is not \{path, from\}/);
    assert.throws(() => unfoldRecord({ input, folded: [{ path: '/result/allow', from: '/input/mcp' }] }), /does not point into the input/);
    assert.throws(() => unfoldRecord({ input, folded: [{ path: '/input/x', from: '/input/nope' }] }), /refers to \/input\/nope, which the record does not hold/);
  });

  it('returns a record without folds (written before folding existed) as it is', () => {
    const old = sampleDraft({ i: 1 });
    assert.equal(unfoldRecord(old), old);
  });

  it('folded records chain and verify; editing the kept copy or the folded list is reported as an edit', async () => {
    const dir = tempDir();
    const sink = openSink(dir, { checkpointEvery: 100 });
    sink.append(sampleDraft({ i: 1 })); // an unfolded (older-format) record in the same chain
    for (let i = 2; i <= 4; i++) sink.append(foldedDraft(i, { q: `q${i}` }).draft);
    await sink.close();
    assert.deepEqual(errors(await verifyDir(dir)), []);

    const lines = chainedLines(dir);
    const records = lines.map((l) => parseLine(l)).filter((p) => p.kind === 'record').map((p) => (p as { record: ChainedDecisionRecord }).record);
    assert.equal(records.length, 4);
    assert.equal(records[0]!.folded, undefined);
    assert.equal(records[1]!.folded?.length, 3);
    assert.equal(at(records[1]!.input, 'mcp', 'params', 'arguments'), undefined, 'the folded copy is not written');

    const file = listLogFiles(dir)[0]!.path;
    const idx = lines.findIndex((l) => l.includes('"seq":3,'));
    const r3 = recordOf(lines[idx]!);
    const tamper = async (edited: unknown): Promise<void> => {
      const copy = [...lines];
      copy[idx] = canonicalize(edited);
      writeLines(file, copy);
      const e = errors(await verifyDir(dir));
      assert.ok(e.some((x) => x.kind === 'edited' && x.seq === 3), JSON.stringify(e));
    };
    // The arguments live only in mcp.arguments now: changing them there must break the chain...
    await tamper({ ...r3, input: { ...r3.input!, mcp: { ...r3.input!.mcp, arguments: { q: 'other' } } } });
    // ...and so must dropping the folded list (which would change what replay and review restore).
    const { folded: _dropped, ...withoutFolds } = r3;
    await tamper(withoutFolds);
    writeLines(file, lines);
    assert.deepEqual(errors(await verifyDir(dir)), []);
  });

  it('readers restore the folded copies: SIEM export input, logs ARGS column', async () => {
    const { draft, masked } = foldedDraft(5, { city: 'Oslo' });
    const dir = tempDir();
    const sink = openSink(dir);
    sink.append(draft);
    await sink.close();
    const r = recordOf(chainedLines(dir).find((l) => parseLine(l).kind === 'record')!);
    const ocsf = toOcsfApiActivity(r);
    assert.deepStrictEqual(ocsf.unmapped.input, masked);
    assert.equal(recordRow(r)[RECORD_COLUMNS.indexOf('ARGS')], '{"city":"Oslo"}');
  });
});
