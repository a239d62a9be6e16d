import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { accountingRecord } from '../../src/decisionlog/accounting.js';
import { FileDecisionSink } from '../../src/decisionlog/file-sink.js';
import { listLogFiles } from '../../src/decisionlog/files.js';
import { signingKeyFrom } from '../../src/decisionlog/keys.js';
import { LogIndex } from '../../src/review/log-index.js';
import { burnDown, filterFromParams, summary, timeline } from '../../src/review/query.js';
import { ReviewServer } from '../../src/review/server.js';
import { VerifyWatch } from '../../src/review/verify-watch.js';
import { sampleDraft } from '../../test/unit/decisionlog/fixtures.js';

const USAGE = `Usage: node --expose-gc --import tsx bench/review/main.ts [--records N] [--runs N]   (or: make bench-review)

Measures tollgate review on a large decision log: builds the log once (cached in
bench/work/review-N/), then the index build time and memory, the latency of timeline pages,
summaries, burn-down and record detail (in process and over HTTP), and how long the chain
verification takes. Writes bench/results/review-latest.json. Numbers: docs/review.md.

  --records N   decision records (default 1000000); allowed calls also get an accounting record
  --runs N      repetitions per query (default 20)
  --no-verify   skip timing the chain verification (minutes at 1M records)
`;

const { values: v } = parseArgs({ options: { records: { type: 'string' }, runs: { type: 'string' }, 'no-verify': { type: 'boolean' }, help: { type: 'boolean' } } });
if (v.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const N = Number(v.records ?? 1_000_000);
const RUNS = Number(v.runs ?? 20);
const TEAMS = 20, SUBS = 500, TOOLS = 60, SERVERS = 12, REVISIONS = 8;
const root = resolve('bench/work', `review-${N}`);
const dir = join(root, 'decisions');
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
const mb = (n: number): number => Math.round((n / 2 ** 20) * 10) / 10;

/** The log: 20 teams, 500 subjects, 60 tools on 12 servers, one deny in ten, a budget per team, an accounting record per allowed call. */
async function generate(): Promise<number> {
  if (existsSync(join(root, 'complete'))) return 0;
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  const t0 = performance.now();
  const sink = FileDecisionSink.open({
    dir, maxFileBytes: 256 * 2 ** 20, checkpointEvery: 1000, checkpointIntervalMs: 0, signingKeyPath: join(root, 'unused.pem'),
    fsync: 'never', signingKey: signingKeyFrom(generateKeyPairSync('ed25519').privateKey), warn: () => undefined,
  });
  const start = Date.UTC(2025, 0, 1);
  const used = new Float64Array(TEAMS);
  for (let i = 1; i <= N; i++) {
    const team = i % TEAMS;
    const deny = i % 10 === 3;
    const d = sampleDraft({
      i, team: `team-${team}`, sub: `user-${i % SUBS}`, agent: `agent-${i % 7}`, server: `server-${i % SERVERS}`,
      tool: deny && i % 20 === 3 ? 'delete_records' : `tool_${i % TOOLS}`, allow: !deny, revision: `rev-${1 + Math.floor((i / N) * REVISIONS)}`,
      reasons: deny ? [`tool is not allowed for team-${team}`] : [], timestamp: new Date(start + Math.floor((i / N) * 30 * 86_400_000)).toISOString(),
    });
    used[team] = (used[team]! + 50) % 1_000_000;
    d.budget = [{ name: `team-${team}-monthly`, limit: 1_000_000, used: used[team]!, remaining: 1_000_000 - used[team]! }];
    sink.append(d);
    if (!deny) {
      sink.account(accountingRecord({
        decisionId: d.decision_id, now: new Date(Date.parse(d.timestamp) + 5), instance: 'authz-1', version: '0.1.0',
        identity: { sub: d.identity.sub, team: d.identity.team, agent: d.identity.agent }, server: d.mcp.server, namespace: d.mcp.namespace,
        method: d.mcp.method, tool: d.mcp.tool, requestTokens: 12, responseTokens: 200 + (i % 300),
      }));
    }
    if (i % 100_000 === 0) process.stderr.write(`  generated ${i} records\n`);
  }
  await sink.close();
  writeFileSync(join(root, 'complete'), '');
  return performance.now() - t0;
}

function stats(xs: number[]): { p50: number; p99: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number): number => Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))]! * 100) / 100;
  return { p50: at(0.5), p99: at(0.99), max: at(1) };
}

async function timeIt(f: () => unknown | Promise<unknown>): Promise<{ p50: number; p99: number; max: number }> {
  await f();
  const xs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await f();
    xs.push(performance.now() - t);
  }
  return stats(xs);
}

async function main(): Promise<void> {
  process.stderr.write(`review bench: ${N} records in ${dir}\n`);
  const genMs = await generate();
  const files = listLogFiles(dir);
  gc();
  const before = process.memoryUsage();
  const t0 = performance.now();
  const ix = new LogIndex();
  await ix.refresh(files, 1_000_000);
  const buildMs = performance.now() - t0;
  gc();
  const after = process.memoryUsage();
  const now = new Date('2025-02-01T00:00:00Z');
  const f = (s: string) => filterFromParams(new URLSearchParams(s), now);
  const page = (s: string, cursor = ix.size) => () => timeline(ix, f(s), cursor, 50);
  const deep = timeline(ix, f(''), Math.floor(ix.size / 2), 1).next;
  const queries: Record<string, () => unknown> = {
    'timeline, no filter (first page)': page(''),
    'timeline, page from the middle (cursor)': page('', Number(deep)),
    'timeline, team': page('team=team-3'),
    'timeline, team + tool glob + deny': page('team=team-3&tool=delete_*&decision=deny'),
    'timeline, one subject + revision': page('sub=user-7&revision=rev-8'),
    'timeline, reason substring': page('reason=not%20allowed%20for%20team-19'),
    'timeline, time range (a day)': page('since=2025-01-15&until=2025-01-16'),
    'timeline, no match (full scan)': page('team=nobody'),
    'summary (charts), no filter': () => summary(ix, f('')),
    'summary (charts), deny': () => summary(ix, f('decision=deny')),
    'burn-down of one team': () => burnDown(ix, f(''), 'team-3'),
    'record detail (one line read back)': () => ix.readLine(ix.place(Math.floor(ix.size / 3))),
  };
  const latency: Record<string, ReturnType<typeof stats>> = {};
  for (const [name, q] of Object.entries(queries)) latency[name] = await timeIt(q);

  // Over HTTP, as the page asks: the server's own index (built again), then round trips.
  const server = await ReviewServer.start({ host: '127.0.0.1', port: 0, files: () => listLogFiles(dir), verify: null, password: null, refreshMs: 1000 });
  const ts = performance.now();
  await server.indexed();
  const serverBuildMs = performance.now() - ts;
  const http = async (path: string): Promise<void> => {
    const r = await fetch(server.url.replace(/\/$/, '') + path);
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
    await r.arrayBuffer();
  };
  const httpLatency: Record<string, ReturnType<typeof stats>> = {
    'GET /api/timeline?team=team-3&decision=deny': await timeIt(() => http('/api/timeline?team=team-3&decision=deny')),
    'GET /api/summary (repeat: served from the summary cache)': await timeIt(() => http('/api/summary')),
    'GET /charts/burndown.svg?team_chart=team-3': await timeIt(() => http('/charts/burndown.svg?team_chart=team-3')),
    'GET /api/record?row=500000': await timeIt(() => http(`/api/record?row=${Math.floor(ix.size / 2)}`)),
  };
  await server.close();

  // Chain verification (the child process `logs verify` the page shows the status of).
  let verify: { sec: number; ok: boolean | null } | null = null;
  if (!v['no-verify']) {
    const vw = new VerifyWatch({ dir, files: () => listLogFiles(dir), flags: [], everyMs: 3_600_000 });
    const tv = performance.now();
    vw.start();
    while (vw.state().checkedAt === null) await new Promise((r) => setTimeout(r, 200));
    verify = { sec: Math.round((performance.now() - tv) / 100) / 10, ok: vw.state().report?.ok ?? null };
    vw.stop();
  }

  const result = {
    records: ix.size, lines: ix.linesRead, files: files.length, node: process.version,
    generateSec: genMs ? Math.round(genMs / 100) / 10 : null,
    index: {
      buildSec: Math.round(buildMs / 100) / 10, recordsPerSec: Math.round(ix.size / (buildMs / 1000)), serverBuildSec: Math.round(serverBuildMs / 100) / 10,
      columnsMB: mb(ix.columnBytes()), heapMB: mb(after.heapUsed - before.heapUsed), arrayBuffersMB: mb(after.arrayBuffers - before.arrayBuffers), rssMB: mb(after.rss),
    },
    latencyMs: latency, httpLatencyMs: httpLatency, verify, load: (await import('node:os')).loadavg().map((x) => Math.round(x * 10) / 10),
  };
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/review-latest.json', JSON.stringify(result, null, 2) + '\n');
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
}

main().then(() => process.exit(0), (e: Error) => { process.stderr.write(`${e.stack ?? e.message}\n`); process.exit(1); });
