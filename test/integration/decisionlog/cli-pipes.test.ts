import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { selfCommand } from '../../../src/util/self.js';
import { sampleDraft } from '../../unit/decisionlog/fixtures.js';
import { cleanupTempDirs, openSink, tempDir } from '../../unit/decisionlog/helpers.js';

/** Issue 18: `tollgate logs query --json | head -1` ends cleanly, not with an EPIPE stack trace. */

function shell(cmd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => { stdout += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('tollgate logs in a pipe (issue 18)', function () {
  this.timeout(60_000);
  let dir: string;
  before(async () => {
    dir = join(tempDir(), 'decisions');
    const sink = openSink(dir, { checkpointEvery: 500 });
    // Far more than a pipe buffer (64 KiB), so the writer is still writing when head exits.
    for (let i = 1; i <= 3000; i++) sink.append(sampleDraft({ i, timestamp: new Date(Date.UTC(2025, 2, 9, 0, 0, i)).toISOString() }));
    await sink.close();
  });
  after(cleanupTempDirs);

  for (const args of [['query', '--json'], ['query'], ['tail', '-n', '3000']]) {
    it(`logs ${args.join(' ')} | head -1 exits 0 with nothing on stderr`, async () => {
      const self = selfCommand();
      const cli = [self.cmd, ...self.args].map((a) => `'${a}'`).join(' ');
      // pipefail is not POSIX: the CLI's own status comes back through a file descriptor.
      const r = await shell(`{ ${cli} logs ${args.join(' ')} --dir '${dir}'; echo "status=$?" >&2; } | head -1`);
      assert.equal(r.code, 0);
      assert.equal(r.stdout.split('\n').filter(Boolean).length, 1);
      assert.match(r.stderr, /status=0\s*$/, r.stderr);
      assert.doesNotMatch(r.stderr, /EPIPE|Error/);
    });
  }
});
