import { strict as assert } from 'node:assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readLines, readTail } from '../../../src/decisionlog/files.js';
import { LogCursor } from '../../../src/decisionlog/reader.js';
import { cleanupTempDirs, fill, openSink, tempDir } from './helpers.js';

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
});
