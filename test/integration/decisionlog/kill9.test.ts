import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listLogFiles, readLines } from '../../../src/decisionlog/files.js';
import { parseLine } from '../../../src/decisionlog/lines.js';
import { loadOrCreateSigningKey } from '../../../src/decisionlog/keys.js';
import { cleanupTempDirs, errors, openSink, tempDir, trusted, verifyDir, fill } from '../../unit/decisionlog/helpers.js';

const child = fileURLToPath(new URL('./fixtures/append-loop.ts', import.meta.url));

/** Runs the appender until it has acknowledged at least `atLeast` records, then SIGKILLs it. */
function runAndKill(dir: string, keyPath: string, atLeast: number): Promise<{ acked: number[]; start: number }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', child, dir, keyPath, String(256 * 1024)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const acked: number[] = [];
    let start = -1;
    let buf = '';
    let stderr = '';
    let killed = false;
    p.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    p.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) {
        if (l.startsWith('ready ')) start = Number(l.slice(6));
        else if (l) acked.push(Number(l));
      }
      if (!killed && acked.length >= atLeast) {
        killed = true;
        p.kill('SIGKILL');
      }
    });
    p.on('exit', (_code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`appender exited on its own (${signal ?? _code}):\n${stderr}`));
      else resolve({ acked, start });
    });
  });
}

function seqsOnDisk(dir: string): Set<number> {
  const out = new Set<number>();
  for (const f of listLogFiles(dir)) {
    for (const l of readLines(f.path)) {
      if (!l.complete) continue;
      const p = parseLine(l.text);
      if (p.kind === 'record') out.add(p.record.seq);
    }
  }
  return out;
}

describe('decision log durability under kill -9', function () {
  this.timeout(60000);
  after(cleanupTempDirs);

  it('keeps every acknowledged record, twice in a row, and the chain survives both crashes', async () => {
    const dir = tempDir();
    const keyPath = join(tempDir('tg-key-'), 'decision-log.pem');

    const first = await runAndKill(dir, keyPath, 3000);
    assert.equal(first.start, 0);
    let onDisk = seqsOnDisk(dir);
    const lost = first.acked.filter((s) => !onDisk.has(s));
    assert.deepEqual(lost, [], 'acknowledged records missing after kill -9');
    assert.ok(listLogFiles(dir).length > 1, 'the run should have rotated');

    const keys = trusted(loadOrCreateSigningKey(keyPath));
    let report = await verifyDir(dir, keys);
    const problems = errors(report).filter((e) => e.kind !== 'truncated');
    assert.deepEqual(problems, [], 'at most a truncated tail after kill -9');
    assert.ok(report.lastSeq! >= first.acked[first.acked.length - 1]!);

    // The writer restarts on the same directory (stale lock, maybe a torn line) and carries on.
    const second = await runAndKill(dir, keyPath, 1000);
    assert.equal(second.start, report.lastSeq, 'the chain resumes from the last complete record');
    onDisk = seqsOnDisk(dir);
    assert.deepEqual(second.acked.filter((s) => !onDisk.has(s)), []);

    // A clean restart and close: the whole log verifies, every seq present once.
    const sink = openSink(dir, { signingKey: loadOrCreateSigningKey(keyPath) });
    fill(sink, 5);
    await sink.close();
    report = await verifyDir(dir, keys);
    assert.equal(report.ok, true, JSON.stringify(errors(report)));
    assert.equal(report.records, report.lastSeq);
    assert.equal(report.signedThrough, report.lastSeq);
  });
});
