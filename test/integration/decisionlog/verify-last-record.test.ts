import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sampleDraft } from '../../unit/decisionlog/fixtures.js';
import { cleanupTempDirs, openSink, tempDir } from '../../unit/decisionlog/helpers.js';
import { runTollgate } from '../../support/cli.js';

/**
 * Issue 18: editing the last record of a log is reported as what it is, an edited record at its
 * file:line, not as a rewritten, re-chained history plus an "unsigned tail is normal" warning.
 */
describe('tollgate logs verify: the last record edited (issue 18)', function () {
  this.timeout(60_000);
  after(cleanupTempDirs);

  async function logWithLastEdited(checkpointEvery: number): Promise<string> {
    const dir = join(tempDir(), 'decisions');
    const sink = openSink(dir, { checkpointEvery });
    for (let i = 1; i <= 5; i++) sink.append(sampleDraft({ i }));
    await sink.close();
    const file = join(dir, 'decisions-000001.jsonl');
    const lines = readFileSync(file, 'utf8').split('\n');
    const last = lines.map((l, i) => [l, i] as const).filter(([l]) => l.includes('"decision_id"')).at(-1)![1];
    lines[last] = lines[last]!.replace('"rev-1"', '"rev-9"');
    writeFileSync(file, lines.join('\n'));
    return dir;
  }

  it('names the edited record, its line and the checkpoint that proves it; no unsigned-tail warning', async () => {
    const dir = await logWithLastEdited(2);
    const r = await runTollgate(['logs', 'verify', dir]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /^BROKEN: 1 problem/m);
    assert.match(r.stdout, /ERROR\s+edited\s+decisions-000001\.jsonl:8\n\s+record seq 5 at decisions-000001\.jsonl:8 was edited: .*checkpoint at decisions-000001\.jsonl:9, validly signed/);
    assert.doesNotMatch(r.stdout, /re-chained|unsigned_tail|normal for a log being written/);
  });

  it('when the previous checkpoint is further back, says the edit is in that range', async () => {
    const dir = await logWithLastEdited(1000);
    const r = await runTollgate(['logs', 'verify', dir]);
    assert.equal(r.code, 1);
    // Only the closing checkpoint covers seq 5; seq 1..4 are linked by the chain, so the edit is seq 5 or a re-chained rewrite.
    assert.match(r.stdout, /a record in seq 1\.\.5 was edited and the ones after it re-chained/);
    assert.doesNotMatch(r.stdout, /unsigned_tail/);
  });
});
