/**
 * `make bench-nats-scale`: many authz sidecars, simulated, against a real three-node NATS cluster.
 *
 *   node --import tsx bench/nats-scale/main.ts [--n 10,100,1000] [--traffic-sec 30] [--calls-per-sec 1]
 *     [--budgets 4] [--teams-per-sidecar 2] [--per-connection 1] [--workers N] [--publishes 3]
 *     [--replicas 3] [--json FILE]
 *
 * For each sidecar count a fresh cluster (TLS, per-component credentials, streams and buckets
 * with --replicas copies) is started, the sidecars run for --traffic-sec, bundles are published
 * under load, and the tables of docs/scaling.md are printed. See docs/scaling.md for what a
 * simulated sidecar shares with a real one and what it does not.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startBenchCluster } from './cluster.js';
import { checkPlan, DEFAULT_PLAN, parseCounts, parseRange, PlanError, type TrafficPlan } from './plan.js';
import { formatResults } from './report.js';
import { runScale } from './run.js';
import type { ScaleResult } from './types.js';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '10,100,1000' },
    'traffic-sec': { type: 'string', default: String(DEFAULT_PLAN.trafficSec) },
    'calls-per-sec': { type: 'string', default: String(DEFAULT_PLAN.callsPerSec) },
    budgets: { type: 'string', default: String(DEFAULT_PLAN.budgets) },
    'teams-per-sidecar': { type: 'string', default: String(DEFAULT_PLAN.teamsPerSidecar) },
    'result-tokens': { type: 'string', default: DEFAULT_PLAN.resultTokens.join('-') },
    'per-connection': { type: 'string', default: '1' },
    workers: { type: 'string' },
    publishes: { type: 'string', default: '3' },
    replicas: { type: 'string', default: '3' },
    json: { type: 'string' },
  },
  strict: true,
});

function wholeArg(name: string, text: string | undefined, min: number, max: number): number {
  const v = Number(text);
  if (!Number.isSafeInteger(v) || v < min || v > max) throw new PlanError(`--${name} must be a whole number from ${min} to ${max}, got "${text}"`);
  return v;
}

/** One worker process per 250 sidecars, at most 4: Node's event loop, not NATS, is the limit of one. */
export function defaultWorkers(n: number): number {
  return Math.min(4, Math.max(1, Math.ceil(n / 250)));
}

async function main(): Promise<void> {
  const counts = parseCounts(values.n);
  const base: Omit<TrafficPlan, 'sidecars'> = {
    ...DEFAULT_PLAN,
    trafficSec: wholeArg('traffic-sec', values['traffic-sec'], 5, 3600),
    callsPerSec: Number(values['calls-per-sec']),
    budgets: wholeArg('budgets', values.budgets, 1, 100),
    teamsPerSidecar: wholeArg('teams-per-sidecar', values['teams-per-sidecar'], 1, 100),
    resultTokens: parseRange(values['result-tokens'], '--result-tokens'),
  };
  for (const n of counts) checkPlan({ ...base, sidecars: n });
  const perConnection = wholeArg('per-connection', values['per-connection'], 1, 1000);
  const publishes = wholeArg('publishes', values.publishes, 1, 20);
  const replicas = wholeArg('replicas', values.replicas, 1, 3);
  const workersGiven = values.workers === undefined ? null : wholeArg('workers', values.workers, 1, 64);

  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const results: ScaleResult[] = [];
  for (const n of counts) {
    const work = mkdtempSync(join(tmpdir(), 'tollgate-nats-scale-'));
    const bench = await startBenchCluster(work, { size: 3, replicas });
    try {
      console.log(`N = ${n}: 3-node cluster up (R${replicas}), ${base.trafficSec} s of traffic`);
      const result = await runScale({
        servers: bench.cluster.urls, control: await bench.control.ready(), reader: await bench.reader.ready(), publisher: bench.publisher,
        signing: bench.signing, verificationKeyPem: bench.verificationKeyPem, bundle: bench.bundle, authzTls: bench.authzTls,
        natsProcesses: bench.cluster.members.map((m, i) => ({ name: `n${i + 1}`, pid: m.pid! })),
        plan: { ...base, sidecars: n }, workers: workersGiven ?? defaultWorkers(n), perConnection, publishes, workDir: join(work, 'sim'),
        log: (m) => console.log(m),
      });
      results.push(result);
      for (const w of result.warnings.slice(0, 5)) console.log(`  warning: ${w}`);
      // Each count's table as soon as it is measured: a later count that fails loses nothing.
      console.log(`\n${formatResults([result])}\n`);
      if (values.json) writeJson(values.json, base, results);
    } finally {
      await bench.close();
      rmSync(work, { recursive: true, force: true });
    }
  }
  console.log(`\n${formatResults(results)}`);
}

function writeJson(file: string, plan: Omit<TrafficPlan, 'sidecars'>, results: ScaleResult[]): void {
  writeFileSync(file, JSON.stringify({ machine: { cores: cpus().length, cpu: cpus()[0]?.model, memoryGiB: totalmem() / 2 ** 30, loadavg: loadavg() }, plan, results }, null, 2));
}

main().catch((e: Error) => {
  console.error(e instanceof PlanError ? `bench-nats-scale: ${e.message}` : e.stack ?? e.message);
  process.exit(1);
});
