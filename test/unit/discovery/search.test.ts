import { strict as assert } from 'node:assert';
import { Bm25Index, topK } from '../../../src/discovery/bm25.js';
import { parseCatalog } from '../../../src/discovery/catalog.js';
import { scoreRanking } from '../../../src/discovery/metrics.js';
import { ToolSearch } from '../../../src/discovery/search.js';
import { schemaText, terms, toolText, words } from '../../../src/discovery/text.js';
import { VectorIndex } from '../../../src/discovery/vectors.js';
import type { Embedder } from '../../../src/discovery/embedder.js';
import { CATALOG } from './fixtures.js';

describe('discovery: text', () => {
  it('splits identifiers and prose into stemmed terms without stop words', () => {
    assert.deepEqual(words('readFile get_user2 HTTPServer'), ['read', 'file', 'get', 'user', '2', 'http', 'server']);
    assert.deepEqual(terms('Deleting the deleted files'), ['delet', 'delet', 'file']);
    assert.deepEqual(terms('directories'), ['directory']);
    assert.deepEqual(terms(''), []);
  });

  it('is linear on adversarial input and caps what it reads', () => {
    const t0 = process.hrtime.bigint();
    const n = terms('aA1'.repeat(200_000)).length;
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    assert.ok(n > 0 && n <= 64 * 1024, `bounded output (${n})`);
    assert.ok(ms < 2000, `took ${ms} ms`);
  });

  it('reads parameter names and descriptions from a bounded walk of the schema', () => {
    assert.deepEqual(schemaText({ type: 'object', properties: { city: { type: 'string', description: 'City name' }, opts: { type: 'object', properties: { units: {} } } } }), ['city', 'opts', 'City name', 'units']);
    const deep: Record<string, unknown> = {};
    let cur = deep;
    for (let i = 0; i < 10_000; i++) { const next = {}; cur.properties = { [`p${i}`]: next }; cur = next; }
    assert.ok(schemaText(deep).length <= 200);
  });
});

describe('discovery: BM25 and ranking', () => {
  it('ranks the tool whose name and description match first', () => {
    const idx = new Bm25Index(CATALOG.map(toolText));
    const best = topK(idx.scores(terms('weather alerts for a state')), 3, 0);
    assert.equal(CATALOG[best[0]!.doc]!.name, 'get_alerts');
    assert.equal(topK(idx.scores(terms('zzz qqq')), 3, 0).length, 0, 'no shared term, no result');
  });

  it('topK keeps the k best in order with stable ties', () => {
    assert.deepEqual(topK([1, 5, 3, 5, 0], 3).map((s) => s.doc), [1, 3, 2]);
    assert.deepEqual(topK([], 3), []);
  });

  it('bm25 search returns real tools with scores, best first, and honours the filter', async () => {
    const s = await ToolSearch.build(CATALOG, 'bm25', null);
    const hits = await s.search('read the contents of a file', { k: 3 });
    assert.equal(hits[0]!.tool.name, 'read_file');
    assert.ok(hits.every((h, i) => i === 0 || hits[i - 1]!.score >= h.score));
    const filtered = await s.search('read the contents of a file', { k: 3, filter: (t) => t.name !== 'read_file' });
    assert.ok(!filtered.some((h) => h.tool.name === 'read_file'), 'a filtered tool is never returned');
  });

  it('hybrid mode mixes lexical and embedding scores', async () => {
    // A deterministic stand-in embedder: vectors that make "clock" mean the time tools.
    const vec = (text: string): Float32Array => {
      const v = new Float32Array(4);
      const t = text.toLowerCase();
      if (t.includes('clock') || t.includes('time')) v[0] = 1; else if (t.includes('weather') || t.includes('rain')) v[1] = 1; else v[2] = 1;
      return v;
    };
    const embedder: Embedder = { model: 'test', dim: 4, embed: async (ts) => ts.map(vec), close: async () => undefined };
    const s = await ToolSearch.build(CATALOG, 'hybrid', embedder);
    const hits = await s.search('what does the clock say in Tokyo', { k: 2 });
    assert.deepEqual(hits.map((h) => h.tool.server), ['time', 'time']);
    await assert.rejects(ToolSearch.build(CATALOG, 'embedding', null), /needs an embedding model/);
  });

  it('vector index grows and scores by dot product', () => {
    const v = new VectorIndex(2, 1);
    v.add(new Float32Array([1, 0])); v.add(new Float32Array([0, 1])); v.add(new Float32Array([0.6, 0.8]));
    assert.deepEqual([...v.scores(new Float32Array([0, 1]))].map((x) => Math.round(x * 10) / 10), [0, 1, 0.8]);
    assert.throws(() => v.add(new Float32Array(3)), /3 dimensions/);
    // Unrolled sums (dimensions 0-3 of each 4) and the tail agree with the plain dot product.
    for (const dim of [4, 7, 384]) {
      const idx = new VectorIndex(dim);
      const rows = Array.from({ length: 9 }, (_, r) => Float32Array.from({ length: dim }, (_, j) => Math.sin(r * 31 + j)));
      for (const row of rows) idx.add(row);
      const q = Float32Array.from({ length: dim }, (_, j) => Math.cos(j));
      const got = idx.scores(q);
      rows.forEach((row, r) => assert.ok(Math.abs(got[r]! - row.reduce((a, x, j) => a + x * q[j]!, 0)) < 1e-9, `dim ${dim} row ${r}`));
    }
  });
});

describe('discovery: metrics and catalogue', () => {
  it('recall, nDCG and reciprocal rank', () => {
    const ranked = [{ server: 'a', name: 'x' }, { server: 'a', name: 'y' }, { server: 'b', name: 'z' }];
    assert.deepEqual(scoreRanking(ranked, [{ name: 'y' }], 5), { recall: 1, ndcg: 1 / Math.log2(3), rr: 0.5 });
    assert.deepEqual(scoreRanking(ranked, [{ name: 'z', server: 'a' }], 5), { recall: 0, ndcg: 0, rr: 0 });
    const two = scoreRanking(ranked, [{ name: 'x' }, { name: 'q' }], 2);
    assert.equal(two.recall, 0.5);
    assert.equal(two.rr, 1);
  });

  it('rejects malformed catalogues with the entry and field', () => {
    assert.throws(() => parseCatalog({}), /expected a JSON array/);
    assert.throws(() => parseCatalog([{ server: 'a', name: '' }]), /entry \[0\]\.name/);
    assert.throws(() => parseCatalog([{ server: 'a', name: 'x' }, 5]), /entry \[1\]: Invalid input/);
    assert.throws(() => parseCatalog([{ server: 'a', name: 'x', inputSchema: [] }]), /entry \[0\]\.inputSchema: /);
    assert.throws(() => parseCatalog([{ server: 'a', name: 'x' }, { server: 'a', name: 'x' }]), /appears twice/);
    assert.equal(parseCatalog([{ server: 'a', name: 'x' }])[0]!.description, '');
  });
});
