import { strict as assert } from 'node:assert';
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { listLogFiles, readLines, readTail } from '../../../src/decisionlog/files.js';
import { entryShapeProblem, SkippedLines } from '../../../src/decisionlog/lines.js';
import { EntryCursor, LogCursor, readEntriesOfFiles, readRecords } from '../../../src/decisionlog/reader.js';
import type { ChainedDecisionRecord } from '../../../src/decisionlog/types.js';
import { cleanupTempDirs, fileLines, fill, mutateRecord, openSink, tempDir, verifyDir } from './helpers.js';
import { sampleDraft } from './fixtures.js';

describe('decision log file readers', () => {
  after(cleanupTempDirs);

  it('reads lines forwards and backwards across read-chunk boundaries, with byte offsets', () => {
    const path = join(tempDir(), 'big.jsonl');
    // Lines longer than the 1 MiB read chunk, with multi-byte characters straddling boundaries.
    const lines = ['a'.repeat(700_000) + 'é', 'ü'.repeat(600_000), 'short', 'x'.repeat(1_500_000)];
    writeFileSync(path, lines.join('\n') + '\n' + 'torn-tail');
    const fwd = [...readLines(path)];
    assert.deepEqual(fwd.map((l) => l.text), [...lines, 'torn-tail']);
    assert.deepEqual(fwd.map((l) => l.complete), [true, true, true, true, false]);
    let offset = 0;
    fwd.forEach((l, i) => {
      assert.equal(l.offset, offset, `offset of line ${i + 1}`);
      assert.equal(l.lineNo, i + 1);
      offset += Buffer.byteLength(l.text) + 1;
    });
    const tail = readTail(path);
    assert.deepEqual(tail.torn, { offset: fwd[4]!.offset, bytes: 9 });
    const back = [...tail.lines()];
    assert.deepEqual(back.map((l) => l.text), [...lines].reverse());
    assert.deepEqual(back.map((l) => l.offset), fwd.slice(0, 4).map((l) => l.offset).reverse());
    const resumed = [...readLines(path, fwd[2]!.offset, 2)];
    assert.deepEqual(resumed.map((l) => [l.lineNo, l.text.slice(0, 5)]), [[3, 'short'], [4, 'xxxxx'], [5, 'torn-']]);
  });

  it('a cursor reads records from any seq, across rotated files, and picks up new ones', async () => {
    const dir = tempDir();
    const sink = openSink(dir, { maxFileBytes: 10_000 });
    fill(sink, 20);
    const c = new LogCursor(dir, 7);
    assert.deepEqual(c.read(5).map((r) => r.record.seq), [7, 8, 9, 10, 11]);
    assert.deepEqual(c.read(100).map((r) => r.record.seq), [12, 13, 14, 15, 16, 17, 18, 19, 20]);
    assert.deepEqual(c.read(100), []);
    fill(sink, 3, 21);
    assert.deepEqual(c.read(100).map((r) => r.record.seq), [21, 22, 23]);
    await sink.close();
  });

  it('readers skip records whose fields have the wrong type, and lines that are no log lines, counting each with file:line', async () => {
    const dir = tempDir();
    const sink = openSink(dir);
    fill(sink, 6);
    await sink.close();
    const f = listLogFiles(dir)[0]!;
    const line2 = mutateRecord(f.path, 2, (r) => { r.identity = null; });
    mutateRecord(f.path, 4, (r) => { r.timestamp = 5; });
    appendFileSync(f.path, 'not json at all\n');

    const skipped = new SkippedLines();
    assert.deepEqual([...readEntriesOfFiles([f], skipped)].map((e) => e.record.seq), [1, 3, 5, 6]);
    assert.deepEqual([skipped.malformed, skipped.unreadable, skipped.nothingReadable, skipped.maxSeq], [2, 1, false, 6]);
    assert.match(skipped.report()!, new RegExp(
      `^skipped 2 malformed records \\(the first at ${f.name}:${line2}: identity: expected an object\\) and 1 unreadable line \\(${f.name}:${fileLines(f.path).length}: not valid JSON \\(.*\\)\\)$`));
    assert.equal(skipped.report(), null, 'each skip is reported once');

    const followed = new SkippedLines();
    assert.deepEqual([...readRecords(dir, 1, 1024, followed)].map((e) => e.record.seq), [1, 3, 5, 6], 'tail -f reads the same');
    assert.equal(followed.malformed, 2);
    // Replication takes the chain as it is: every record, whatever its fields hold.
    assert.deepEqual(new EntryCursor(dir).read(100).map((e) => e.record.seq), [1, 2, 3, 4, 5, 6]);
    // And verify judges the chain, not the shape: the edited records are "edited", no record is "malformed".
    const report = await verifyDir(dir);
    const kinds = report.findings.filter((x) => x.severity === 'error').map((x) => `${x.kind} ${x.seq ?? '-'}`);
    assert.ok(kinds.includes('edited 2') && kinds.includes('edited 4'), kinds.join(', '));
    assert.deepEqual(report.findings.filter((x) => x.kind === 'malformed').map((x) => x.line), [fileLines(f.path).length], 'only the garbage line is malformed');
  });

  it('a file of garbage holds no line of a decision log; the problem text is safe for a terminal', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'decisions-000001.jsonl'), Buffer.from([0x00, 0xff, 0x1b, 0x5b, 0x32, 0x4a, 0x0a, 0x41, 0x0a]));
    const skipped = new SkippedLines();
    assert.deepEqual([...readEntriesOfFiles(listLogFiles(dir), skipped)], []);
    assert.equal(skipped.nothingReadable, true);
    assert.equal(skipped.unreadable, 2);
    assert.equal(skipped.firstUnreadable!.where, 'decisions-000001.jsonl:1');
    assert.ok([...skipped.report()!].every((c) => c >= ' ' && c !== '\ufffd'), 'control bytes are escaped');
    assert.match(skipped.firstUnreadable!.problem, /\\u001b\[2J/);
  });

  it('entryShapeProblem names the first field of the wrong type, and accepts records as the writer makes them', () => {
    const base = { ...sampleDraft({ i: 1 }), seq: 1, prev_hash: '0'.repeat(64) } as ChainedDecisionRecord;
    assert.equal(entryShapeProblem(base), null);
    assert.equal(entryShapeProblem({ ...base, input: null, folded: [{ path: '/input/mcp/params/arguments', from: '/input/mcp/arguments' }] }), null);
    const cases: Array<[string, unknown, string]> = [
      ['identity', null, 'identity: expected an object'],
      ['mcp', null, 'mcp: expected an object'],
      ['mcp', 5, 'mcp: expected an object'],
      ['result', null, 'result: expected an object'],
      ['result', 'x', 'result: expected an object'],
      ['result.reasons', 'str', 'result.reasons: expected an array'],
      ['result.reasons', null, 'result.reasons: expected an array'],
      ['result.reasons', ['ok', 7], 'result.reasons[1]: expected a string'],
      ['result.allow', 'yes', 'result.allow: expected true or false'],
      ['timestamp', 5, 'timestamp: expected an RFC 3339 time (a string)'],
      ['identity.team', [1], 'identity.team: expected a string or null'],
      ['mcp.tool', 5, 'mcp.tool: expected a string or null'],
      ['labels', null, 'labels: expected an object'],
      ['bundles', { tollgate: null }, 'bundles.tollgate: expected an object'],
      ['erased', 5, 'erased: expected an array'],
      ['folded', [{ path: 1 }], 'folded[0].path: expected a string'],
    ];
    for (const [path, value, want] of cases) {
      const r = structuredClone(base) as unknown as Record<string, Record<string, unknown>>;
      const keys = path.split('.');
      const last = keys.pop()!;
      (keys.length ? r[keys[0]!]! : r as Record<string, unknown>)[last] = value;
      assert.equal(entryShapeProblem(r as unknown as ChainedDecisionRecord), want, want);
    }
  });
});
