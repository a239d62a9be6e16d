/**
 * Builds a tool-retrieval benchmark from the Berkeley Function Calling Leaderboard (BFCL v4,
 * Apache-2.0, PyPI package bfcl-eval): every function of the simple, multiple, live_simple and
 * live_multiple categories becomes one catalogue tool (server "bfcl"); every question becomes a
 * query whose expected tool is the function its ground truth calls. The data is fetched from
 * PyPI by `make discovery-data`, never committed.
 *
 *   tsx bench/discovery/bfcl.ts <dir with bfcl_eval/data> <out dir>
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

interface Fn { name: string; description?: string; parameters?: Record<string, unknown> }
interface Item { id: string; question: { role: string; content: string }[][]; function: Fn[] }
interface Answer { id: string; ground_truth: Record<string, unknown>[] }

const CATEGORIES = ['simple_python', 'multiple', 'live_simple', 'live_multiple'];

function jsonl<T>(path: string): T[] {
  return readFileSync(path, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as T);
}

// BFCL writes JSON Schema with Python type names ("dict", "float"); MCP tools use JSON Schema's.
function schema(p: unknown): unknown {
  if (Array.isArray(p)) return p.map(schema);
  if (!p || typeof p !== 'object') return p;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(p as Record<string, unknown>)) {
    if (k === 'type' && typeof v === 'string') out[k] = ({ dict: 'object', float: 'number', tuple: 'array', any: 'string' } as Record<string, string>)[v] ?? v;
    else out[k] = schema(v);
  }
  return out;
}

function main(): void {
  const [src, out] = process.argv.slice(2);
  if (!src || !out) { console.error('usage: bfcl.ts <bfcl_eval dir> <out dir>'); process.exit(2); }
  const tools = new Map<string, { server: string; name: string; description: string; inputSchema: unknown }>();
  const queries: { query: string; expected: { name: string; server: string }[] }[] = [];
  for (const c of CATEGORIES) {
    const items = jsonl<Item>(join(src, 'data', `BFCL_v4_${c}.json`));
    const answers = new Map(jsonl<Answer>(join(src, 'data', 'possible_answer', `BFCL_v4_${c}.json`)).map((a) => [a.id, a]));
    for (const it of items) {
      for (const f of it.function) {
        // The first definition of a name wins; BFCL repeats functions across questions.
        if (!tools.has(f.name)) tools.set(f.name, { server: 'bfcl', name: f.name, description: f.description ?? '', inputSchema: schema(f.parameters ?? { type: 'object' }) });
      }
      const a = answers.get(it.id);
      const user = it.question.flat().filter((m) => m.role === 'user').map((m) => m.content).join('\n');
      const called = [...new Set((a?.ground_truth ?? []).flatMap((g) => Object.keys(g)))];
      if (!user || !called.length) continue;
      queries.push({ query: user, expected: called.map((name) => ({ name, server: 'bfcl' })) });
    }
  }
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'bfcl-catalog.json'), JSON.stringify([...tools.values()]));
  writeFileSync(join(out, 'bfcl-queries.jsonl'), queries.map((q) => JSON.stringify(q)).join('\n') + '\n');
  console.log(`${tools.size} tools, ${queries.length} queries → ${out}`);
}

main();
