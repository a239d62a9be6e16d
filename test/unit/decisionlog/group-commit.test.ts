import { strict as assert } from 'node:assert';
import { statSync } from 'node:fs';
import { listLogFiles } from '../../../src/decisionlog/files.js';
import { parseLine } from '../../../src/decisionlog/lines.js';
import type { ChainedEntry } from '../../../src/decisionlog/chain.js';
import { TeeSink, type Replica } from '../../../src/decisionlog/tee.js';
import type { ChainedDecisionRecord } from '../../../src/decisionlog/types.js';
import { sampleDraft } from './fixtures.js';
import { cleanupTempDirs, errors, fileLines, openSink, tempDir, verifyDir } from './helpers.js';

const recordsIn = (dir: string): ChainedDecisionRecord[] => listLogFiles(dir).flatMap((f) => fileLines(f.path))
  .map((l) => parseLine(l)).filter((p) => p.kind === 'record').map((p) => (p as { record: ChainedDecisionRecord }).record);
const logBytes = (dir: string): number => listLogFiles(dir).reduce((n, f) => n + statSync(f.path).size, 0);

describe('decision log group commit', () => {
  after(cleanupTempDirs);

  it('writes the records of one turn together at its end, and settles each append once its record is in the file', async () => {
    const dir = tempDir();
    const sink = openSink(dir, { groupCommit: true, checkpointEvery: 1000 });
    const sizeBefore = logBytes(dir);
    const writes = [1, 2, 3, 4, 5].map((i) => sink.append(sampleDraft({ i })));
    assert.ok(writes.every((w) => w instanceof Promise), 'append returns a promise');
    assert.equal(logBytes(dir), sizeBefore, 'nothing is written during the turn');
    await Promise.all(writes);
    assert.deepEqual(recordsIn(dir).map((r) => r.seq), [1, 2, 3, 4, 5]);
    await sink.close();
    assert.deepEqual(errors(await verifyDir(dir)), []);
  });

  it('signs checkpoints and rotates files over written records only', async () => {
    const dir = tempDir();
    const sink = openSink(dir, { groupCommit: true, checkpointEvery: 3, maxFileBytes: 12_000 });
    await Promise.all(Array.from({ length: 20 }, (_, i) => sink.append(sampleDraft({ i: i + 1 }))));
    await sink.close();
    assert.ok(listLogFiles(dir).length >= 3, 'the log rotated within the turn');
    assert.deepEqual(recordsIn(dir).map((r) => r.seq), Array.from({ length: 20 }, (_, i) => i + 1));
    const report = await verifyDir(dir);
    assert.deepEqual(errors(report), []);
    assert.equal(report.signedThrough, 20);
  });

  it('refuses every record of a turn whose write fails, and continues the chain from the last record written', async () => {
    const dir = tempDir();
    const sink = openSink(dir, { groupCommit: true, checkpointEvery: 1000 });
    await sink.append(sampleDraft({ i: 1 }));
    // Fault injection: the descriptor is swapped for one that cannot be written (EBADF) for one turn.
    const s = sink as unknown as { fd: number };
    const fd = s.fd;
    s.fd = 2 ** 30;
    const failed = [2, 3, 4].map((i) => sink.append(sampleDraft({ i })));
    const outcomes = await Promise.allSettled(failed);
    s.fd = fd;
    assert.deepEqual(outcomes.map((o) => o.status), ['rejected', 'rejected', 'rejected']);
    assert.match(String((outcomes[0] as PromiseRejectedResult).reason), /cannot write to decision log/);
    assert.equal(sink.stats().seq, 1, 'the chain head is back at the last record written');
    await sink.append(sampleDraft({ i: 5 }));
    await sink.close();
    assert.deepEqual(recordsIn(dir).map((r) => [r.seq, r.decision_id.slice(-2)]), [[1, '01'], [2, '05']]);
    assert.deepEqual(errors(await verifyDir(dir)), [], 'no gap: the refused records were never chained into the file');
    assert.equal(sink.stats().writeErrors, 1);
  });

  it('offers records to replicas only once the file holds them, in order', async () => {
    const dir = tempDir();
    const file = openSink(dir, { groupCommit: true });
    const offered: number[] = [];
    const replica: Replica = { offer: (e: ChainedEntry) => { offered.push(e.seq); }, close: async () => undefined, stats: () => ({}) };
    const tee = new TeeSink(file, [replica], () => undefined);
    const writes = [1, 2, 3].map((i) => tee.append(sampleDraft({ i })));
    assert.deepEqual(offered, [], 'not before the write');
    await Promise.all(writes);
    assert.deepEqual(offered, [1, 2, 3]);
    await tee.close();
  });
});
