import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { TokenCountWorker } from '../../../src/budget/count-worker.js';
import { countText } from '../../../src/budget/tokens.js';

describe('token counting on a worker thread', function () {
  this.timeout(60_000);
  const worker = new TokenCountWorker(['o200k_base', 'cl100k_base']);
  after(() => worker.close());

  it('gives the same exact counts as counting on this thread, special-token text included', async () => {
    const texts = ['', 'hello world', 'Refund policy: <|endoftext|> is data, not control', 'é'.repeat(5000), JSON.stringify({ rows: Array.from({ length: 200 }, (_, i) => ({ i, v: `row ${i}` })) })];
    for (const t of texts) {
      const counts = await worker.count(t, ['o200k_base', 'cl100k_base']);
      assert.equal(counts.o200k_base, countText(t, 'o200k_base', { maxExactChars: Infinity }), t.slice(0, 30));
      assert.equal(counts.cl100k_base, countText(t, 'cl100k_base', { maxExactChars: Infinity }), t.slice(0, 30));
    }
  });

  it('refuses an encoding it does not know, and is usable again after close', async () => {
    await assert.rejects(worker.count('x', ['nope']), /unknown encoding nope/);
    await worker.close();
    assert.equal((await worker.count('hello world', ['o200k_base'])).o200k_base, 2);
  });

  it('response accounting never loads an encoding on the main thread (it would stall every Check)', () => {
    // A fresh process: this one has loaded encodings in other tests.
    const script = `
      import { measureValueAsync } from './src/budget/tokens.ts';
      const c = await measureValueAsync({ content: [{ type: 'text', text: 'hello world, counted off the main thread' }] }, ['cl100k_base']);
      const loaded = Object.keys((await import('node:module')).createRequire(import.meta.url).cache).filter((k) => k.includes('gpt-tokenizer'));
      console.log(JSON.stringify({ c, loaded }));
      process.exit(0);
    `;
    const out = JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' })) as { c: { tokens: number; byEncoding: Record<string, number> }; loaded: string[] };
    assert.ok(out.c.tokens > 5);
    assert.ok(out.c.byEncoding.cl100k_base! > 5);
    assert.deepEqual(out.loaded, [], 'no tokenizer module on the main thread');
  });

  it('never keeps an idle process alive, and answers one that waits for nothing else', () => {
    // No process.exit: the process must end once the count is given (it ran forever before).
    const script = `
      import { TokenCountWorker } from './src/budget/count-worker.ts';
      const w = new TokenCountWorker(['o200k_base']);
      console.log(JSON.stringify(await w.count('hello world', ['o200k_base'])));
    `;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    assert.deepEqual(JSON.parse(out), { o200k_base: 2 });
  });
});
