/**
 * find_tool at catalogue sizes people run: index build time, vector memory, search latency
 * p50/p99 (query embedding included), and tool tokens of a 500-tool manifest against find_tool.
 * Catalogues of N tools are BFCL's tools spread over servers (srv0, srv1, ...), so N can exceed
 * the benchmark's 1,096 distinct tools; the embedding cache embeds each distinct text once.
 *
 * Also prints where a search's wall time goes (worker: tokenising, forward pass, similarity;
 * this process: BM25 + filter + lexical ranking, waiting, semantic ranking, merge; the rest of the
 * round trip is IPC and framing) and checks that scoring in the worker ranks exactly like scoring
 * in this process (the fallback for embedders without a scorer).
 *
 *   tsx bench/discovery/scale.ts bench/work/discovery [N ...]
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseCatalog, type ToolEntry } from '../../src/discovery/catalog.js';
import { MiniLmEmbedder, type Embedder } from '../../src/discovery/embedder.js';
import { percentile } from '../../src/discovery/metrics.js';
import { EmbeddingCache, ToolSearch, type SearchTiming } from '../../src/discovery/search.js';
import { manifestTokens } from '../../src/cli/tools-discovery.js';

async function main(): Promise<void> {
  const [dir, ...sizes] = process.argv.slice(2);
  if (!dir) { console.error('usage: scale.ts <discovery data dir> [N ...]'); process.exit(2); }
  const base = parseCatalog(JSON.parse(readFileSync(join(dir, 'bfcl-catalog.json'), 'utf8')));
  const queries = readFileSync(join(dir, 'bfcl-queries.jsonl'), 'utf8').split('\n').filter(Boolean).slice(0, 200).map((l) => (JSON.parse(l) as { query: string }).query);
  const ns = (sizes.length ? sizes : ['500', '5000']).map(Number);
  const embedder = await MiniLmEmbedder.start();
  const cache = new EmbeddingCache();
  // Wall times depend on what else runs on the machine; CPU times (this process + the embedding
  // worker, per search) are what a search costs.
  console.log(`embedding runtime: ${embedder.runtime}`);
  console.log('tools  build_s  vectors_KiB  p50_ms  p99_ms  cpu_p50_ms (node + worker)  bm25_p50_ms  manifest_tokens  find_tool_tokens  saved');
  try {
    for (const n of ns) {
      const tools: ToolEntry[] = [];
      for (let i = 0; tools.length < n; i++) tools.push({ ...base[i % base.length]!, server: `srv${Math.floor(i / base.length)}` });
      const t0 = performance.now();
      const hybrid = await ToolSearch.build(tools, 'hybrid', embedder, cache);
      const build = (performance.now() - t0) / 1000;
      const bm25 = await ToolSearch.build(tools, 'bm25', null);
      // The same embedder without a scorer: vectors held and scored in this process.
      const plain: Embedder = { model: embedder.model, dim: embedder.dim, embed: (t) => embedder.embed(t), close: async () => undefined };
      const local = await ToolSearch.build(tools, 'hybrid', plain, cache);
      let same = 0;
      for (const q of queries) {
        const [a, b] = [await hybrid.search(q, { k: 5 }), await local.search(q, { k: 5 })];
        if (JSON.stringify(a.map((h) => [h.tool.server, h.tool.name, h.score])) === JSON.stringify(b.map((h) => [h.tool.server, h.tool.name, h.score]))) same++;
      }
      const parts: Record<string, number[]> = { tok: [], fwd: [], sim: [], lexical: [], wait: [], semrank: [], merge: [], ipc: [] };
      const lat: number[] = [];
      const lexLat: number[] = [];
      const cpu: number[] = [];
      const nodeCpu: number[] = [];
      const workerCpu: number[] = [];
      const answers: string[] = [];
      for (const q of queries) {
        let t = performance.now();
        const c0 = process.cpuUsage();
        const w0 = embedder.workerCpuMs;
        const timing = {} as SearchTiming;
        const hits = await hybrid.search(q, { k: 5, timing });
        lat.push(performance.now() - t);
        const w = embedder.lastTiming;
        parts.tok!.push(w.tokMs); parts.fwd!.push(w.fwdMs); parts.sim!.push(w.simMs);
        parts.lexical!.push(timing.lexicalMs); parts.wait!.push(timing.embedWaitMs); parts.semrank!.push(timing.semanticRankMs); parts.merge!.push(timing.mergeMs);
        parts.ipc!.push(timing.lexicalMs + timing.embedWaitMs - w.tokMs - w.fwdMs - w.simMs);
        const c = process.cpuUsage(c0);
        nodeCpu.push((c.user + c.system) / 1000);
        workerCpu.push(embedder.workerCpuMs - w0);
        cpu.push(nodeCpu[nodeCpu.length - 1]! + workerCpu[workerCpu.length - 1]!);
        answers.push(JSON.stringify({ tools: hits.map((h) => ({ name: `${h.tool.server}__${h.tool.name}`, description: h.tool.description, inputSchema: h.tool.inputSchema })) }));
        t = performance.now();
        await bm25.search(q, { k: 5 });
        lexLat.push(performance.now() - t);
      }
      lat.sort((a, b) => a - b);
      lexLat.sort((a, b) => a - b);
      for (const a of [cpu, nodeCpu, workerCpu]) a.sort((x, y) => x - y);
      const tok = manifestTokens(tools, answers);
      const med = (a: number[]): string => percentile([...a].sort((x, y) => x - y), 50).toFixed(2);
      console.log(`  ${n} tools: same top 5 and scores as scoring in this process for ${same}/${queries.length} queries; p50 ms: ${Object.entries(parts).map(([k, v]) => `${k} ${med(v)}`).join(', ')} (ipc = round trip - worker compute)`);
      await hybrid.close();
      console.log([n, build.toFixed(1), (hybrid.vectorBytes / 1024).toFixed(0), percentile(lat, 50).toFixed(2), percentile(lat, 99).toFixed(2), `${percentile(cpu, 50).toFixed(2)} (${percentile(nodeCpu, 50).toFixed(2)} + ${percentile(workerCpu, 50).toFixed(2)})`, percentile(lexLat, 50).toFixed(2), tok.manifest, tok.findTool, `${tok.savedPercent}%`].join('  '));
    }
  } finally {
    await embedder.close();
  }
}

void main();
