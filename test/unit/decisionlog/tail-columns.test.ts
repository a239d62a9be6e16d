import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { createLogsCommand } from '../../../src/cli/logs.js';
import { sampleDraft } from './fixtures.js';
import { cleanupTempDirs, openSink, tempDir } from './helpers.js';

/** Issue 18: `logs tail` columns stay put whatever the values' lengths; `logs query` shows agent, groups and arguments. */

async function run(argv: string[]): Promise<string> {
  let out = '';
  const code = await createLogsCommand({ out: (s) => { out += s; }, err: () => undefined, env: {}, now: () => new Date('2025-03-10T00:00:00Z') }).run(argv);
  assert.equal(code, 0);
  return out;
}

describe('logs table columns (issue 18)', () => {
  let dir: string;
  before(async () => {
    dir = join(tempDir(), 'decisions');
    const sink = openSink(dir, { checkpointEvery: 10 });
    sink.append(sampleDraft({ i: 1, sub: 'al', tool: 'a', args: { q: 'x' } }));
    sink.append(sampleDraft({ i: 2, sub: 'spiffe://cluster.local/ns/payments/sa/a-very-long-service-account', tool: 'a_tool_with_a_rather_long_name_indeed', args: { query: 'y'.repeat(500) } }));
    await sink.close();
  });
  after(cleanupTempDirs);

  it('tail: every column starts at the same place on every row', async () => {
    const lines = (await run(['tail', '--dir', dir])).trimEnd().split('\n');
    assert.equal(lines.length, 3);
    const starts = (l: string) => [...l.matchAll(/(?<= {2})\S/g)].map((m) => m.index);
    const head = starts(lines[0]!);
    for (const l of lines.slice(1)) assert.deepEqual(starts(l).slice(0, head.length - 1), head.slice(0, -1), l);
    assert.match(lines[2]!, /spiffe:\/\/cluste…/);
  });

  it('query: AGENT, GROUPS and ARGS columns, ARGS cut at 40 characters', async () => {
    const lines = (await run(['query', '--dir', dir])).trimEnd().split('\n');
    assert.match(lines[0]!, /SUB\s+TEAM\s+AGENT\s+GROUPS\s+SERVER\s+TOOL\s+ARGS\s+REVISION/);
    assert.match(lines[1]!, /\{"q":"x"\}/);
    assert.match(lines[2]!, /\{"query":"y{29}…/);
    assert.ok(!lines[2]!.includes('y'.repeat(60)));
  });
});
