/**
 * find_tool at catalogue sizes people run: index build time, vector memory, search latency
 * p50/p99 (query embedding included), and tool tokens of a 500-tool manifest against find_tool.
 * Catalogues of N tools are BFCL's tools spread over servers (srv0, srv1, ...), so N can exceed
 * the benchmark's 1,096 distinct tools; the embedding cache embeds each distinct text once.
 *
 *   tsx bench/discovery/scale.ts bench/work/discovery [N ...]
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseCatalog, type ToolEntry } from '../../src/discovery/catalog.js';
import { MiniLmEmbedder } from '../../src/discovery/embedder.js';
import { percentile } from '../../src/discovery/metrics.js';
import { EmbeddingCache, ToolSearch } from '../../src/discovery/search.js';
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
        const hits = await hybrid.search(q, { k: 5 });
        lat.push(performance.now() - t);
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
      console.log([n, build.toFixed(1), (hybrid.vectorBytes / 1024).toFixed(0), percentile(lat, 50).toFixed(2), percentile(lat, 99).toFixed(2), `${percentile(cpu, 50).toFixed(2)} (${percentile(nodeCpu, 50).toFixed(2)} + ${percentile(workerCpu, 50).toFixed(2)})`, percentile(lexLat, 50).toFixed(2), tok.manifest, tok.findTool, `${tok.savedPercent}%`].join('  '));
    }
  } finally {
    await embedder.close();
  }
}

void main();
