import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { DevIssuer } from '../src/identity/issuer.js';
import { defaultConfig } from '../src/authz/config.js';
import { projectRoot, toolPath } from '../src/util/tools.js';
import { buildWorkload, writeGhzData, type BenchCall } from './calldata.js';
import { runEndToEnd } from './e2e.js';
import { runGhz, type LoadResult } from './ghz.js';
import { describeMachine } from './machine.js';
import { cpuSeconds, currentRss, LOAD_CORE, peakRss, SERVER_CORE } from './proc.js';
import { renderReport, evaluateTargets, perCore, type EndToEndResult, type ServerResult } from './report.js';
import { SERVER_KINDS, startOpaEnvoy, startServer, startTollgate, stopServer, type ServerKind, type ServerSetup, type ServerUnderTest } from './servers.js';
import { verifyDecisions } from './verify.js';

const run = promisify(execFile);

const USAGE = `Usage: node --import tsx bench/main.ts [flags]     (or: make bench)

Benchmarks ext_authz servers side by side in one run, each alone on CPU core ${SERVER_CORE} with the load
generator (ghz) on core ${LOAD_CORE}: saturation throughput, latency at fixed rates, peak RSS; then
end to end through Envoy. Prints a table and writes bench/results/<timestamp>.json and latest.json.

  --quick               short phases (about a minute in all), for a smoke run
  --servers LIST        comma-separated subset of ceiling,tollgate,opa-envoy,tollgate-nolog,
                        tollgate-budgets (per-team token budgets over NATS leases),
                        opa-envoy-jwt (peer behind jwt_authn), opa-envoy-log (peer with its decision log)
                        (default: ceiling,tollgate,opa-envoy; all of them without --quick)
  --duration SEC        seconds per measured phase (default 10, quick 4)
  --rates LIST          fixed request rates (default 1000,3000)
  --rounds N            rounds of every phase, best kept (default 2, quick 1)
  --no-e2e              skip the end-to-end (Envoy) measurements
  --e2e-calls N         sequential MCP calls per end-to-end path (default 2000, quick 300)
  --policies DIR        Tollgate policy directory (default policies)
  --out DIR             results directory (default bench/results)
  --node-flags=FLAGS    extra node flags for tollgate authz, e.g. --node-flags="--max-old-space-size=96"
  --echo                show the servers' own output
`;

/** Why the budgets variant's run did not exercise its budgets, or null when it did. */
async function budgetsUnused(adminUrl: string | undefined): Promise<string | null> {
  if (!adminUrl) return 'no admin endpoint to read the budgets from';
  try {
    const status = (await (await fetch(`${adminUrl}/status`, { signal: AbortSignal.timeout(5000) })).json()) as { budgets?: { mode?: string; budgets?: { name: string; chargedTokens?: number }[] } | null };
    const b = status.budgets;
    if (!b) return 'authz reports no budgets';
    if (b.mode !== 'nats') return `budgets in mode ${String(b.mode)}, not shared through NATS`;
    const charged = (b.budgets ?? []).reduce((n, x) => n + (x.chargedTokens ?? 0), 0);
    process.stderr.write(`[bench] tollgate-budgets charged ${charged} tokens over NATS leases (${(b.budgets ?? []).map((x) => `${x.name} ${x.chargedTokens ?? 0}`).join(', ')})\n`);
    return charged > 0 ? null : 'no tokens were charged to the budgets';
  } catch (e) {
    return `cannot read authz's /status: ${(e as Error).message}`;
  }
}

interface Phases { durationSec: number; warmupSec: number; rounds: number; rates: number[]; e2eCalls: number; e2eWarmup: number }

/** Saturation load: enough requests in flight to keep one core busy, over a few HTTP/2 connections as Envoy workers would. */
const SATURATION = { concurrency: 64, connections: 4 };
/** Fixed-rate load: workers only wait on the rate limiter, so more of them changes nothing. */
const FIXED = { concurrency: 32, connections: 4 };

function benchTool(name: string, envName: string): string {
  const explicit = process.env[envName];
  if (explicit) return explicit;
  const p = join(projectRoot(), '.tools', 'bin', name);
  if (!existsSync(p)) throw new Error(`${name} not found at ${p}: run \`make bench\` (it installs it into .tools/bin) or set ${envName}`);
  return p;
}

function optionalTool(name: 'envoy' | 'opa'): string | null {
  try { return toolPath(name); } catch { return null; }
}

const IDLE_SETTLE_MS = 2000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Running { kind: ServerKind; server: ServerUnderTest | null; result: ServerResult; rounds: { saturation: LoadResult[]; cpu: Array<number | null>; fixed: LoadResult[][] } }

async function startAll(kinds: readonly ServerKind[], setup: ServerSetup, calls: readonly BenchCall[]): Promise<Running[]> {
  const out: Running[] = [];
  for (const kind of kinds) {
    const result: ServerResult = { kind, title: kind, decisions: { matched: 0, mismatches: [] }, saturation: null, saturationCpu: null, fixed: [], idleRssBytes: null, peakRssBytes: null, error: null };
    const r: Running = { kind, server: null, result, rounds: { saturation: [], cpu: [], fixed: [] } };
    out.push(r);
    try {
      r.server = await startServer(kind, setup);
      result.title = r.server.title;
      // The ceiling allows everything by design; every real engine must decide as the policy says.
      if (kind !== 'ceiling') result.decisions = await verifyDecisions(r.server.target, calls);
      else result.decisions = { matched: calls.length, mismatches: [] };
      // Idle: started, policy loaded, the workload's 25 calls answered once, then a moment of rest
      // (what a pod's sidecar holds between calls), before any load phase.
      await sleep(IDLE_SETTLE_MS);
      result.idleRssBytes = currentRss(r.server.proc.pid!);
    } catch (e) {
      result.error = `did not start: ${(e as Error).message.split('\n').slice(0, 4).join(' | ')}`;
    }
  }
  return out;
}

/** Best of the rounds: the one least disturbed by whatever else ran on the machine meanwhile. */
function bestSaturation(r: Running): void {
  let best = -1;
  r.rounds.saturation.forEach((s, i) => {
    if (best < 0 || perCore(s, r.rounds.cpu[i] ?? null) > perCore(r.rounds.saturation[best]!, r.rounds.cpu[best] ?? null)) best = i;
  });
  if (best >= 0) { r.result.saturation = r.rounds.saturation[best]!; r.result.saturationCpu = r.rounds.cpu[best] ?? null; }
}

function bestFixed(r: Running, rates: readonly number[]): void {
  r.result.fixed = rates.map((_, i) => {
    const runs = r.rounds.fixed.map((round) => round[i]).filter((x): x is LoadResult => !!x);
    return runs.length ? runs.reduce((a, b) => (b.latencyMs.p99 < a.latencyMs.p99 ? b : a)) : undefined;
  }).filter((x): x is LoadResult => !!x);
}

/**
 * Every server runs for the whole measurement (idle ones cost nothing), and the phases go round
 * robin across servers, several rounds: slow drift and noisy neighbours then hit every server
 * alike instead of whichever happened to be measured at that moment.
 */
async function measureAll(running: Running[], dataFile: string, ghz: string, p: Phases, workDir: string): Promise<void> {
  const live = (): Running[] => running.filter((r) => r.server && !r.result.error);
  const ghzRun = (r: Running, o: { durationSec: number; rps?: number; concurrency: number; connections: number }): Promise<LoadResult> =>
    runGhz({ ghz, target: r.server!.target, dataFile, outFile: join(workDir, `ghz-${r.kind}.json`), ...o });
  const guard = async (r: Running, what: string, f: () => Promise<void>): Promise<void> => {
    process.stderr.write(`[bench] ${r.result.title}: ${what}\n`);
    try {
      await f();
      if (!r.server!.proc.running) r.result.error = `exited during the run: ${r.server!.proc.output.slice(-1000)}`;
    } catch (e) {
      r.result.error = `${what}: ${(e as Error).message.split('\n').slice(0, 4).join(' | ')}`;
    }
  };
  for (const r of live()) await guard(r, `warm-up ${p.warmupSec}s`, async () => { await ghzRun(r, { durationSec: p.warmupSec, ...SATURATION }); });
  for (let round = 1; round <= p.rounds; round++) {
    for (const r of live()) {
      await sleep(500);
      await guard(r, `round ${round}/${p.rounds}: saturation ${p.durationSec}s`, async () => {
        const pid = r.server!.proc.pid!;
        const cpu0 = cpuSeconds(pid);
        const t0 = Date.now();
        r.rounds.saturation.push(await ghzRun(r, { durationSec: p.durationSec, ...SATURATION }));
        const cpu1 = cpuSeconds(pid);
        r.rounds.cpu.push(cpu0 != null && cpu1 != null ? (cpu1 - cpu0) / ((Date.now() - t0) / 1000) : null);
      });
    }
    for (const [i, rps] of p.rates.entries()) {
      for (const r of live()) {
        await sleep(500);
        await guard(r, `round ${round}/${p.rounds}: ${rps} req/s for ${p.durationSec}s`, async () => {
          (r.rounds.fixed[round - 1] ??= [])[i] = await ghzRun(r, { durationSec: p.durationSec, rps, ...FIXED });
        });
      }
    }
  }
  for (const r of running) {
    bestSaturation(r);
    bestFixed(r, p.rates);
    if (r.server) {
      r.result.peakRssBytes = peakRss(r.server.proc.pid!);
      if (r.kind === 'tollgate-budgets') {
        // The variant means something only if its budgets were charged over NATS: say so otherwise.
        const why = await budgetsUnused(r.server.adminUrl);
        if (why) r.result.error = why;
      }
      await stopServer(r.server);
    }
  }
}

function timestamp(d: Date): string {
  return d.toISOString().replace(/[:]/g, '-').replace(/\.\d+Z$/, 'Z');
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean' }, servers: { type: 'string' }, duration: { type: 'string' }, rates: { type: 'string' },
      'no-e2e': { type: 'boolean' }, rounds: { type: 'string' }, 'e2e-calls': { type: 'string' }, policies: { type: 'string' }, out: { type: 'string' },
      echo: { type: 'boolean' }, 'node-flags': { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) { process.stdout.write(USAGE); return 0; }
  const quick = values.quick === true;
  const phases: Phases = {
    durationSec: Number(values.duration ?? (quick ? 4 : 10)),
    warmupSec: quick ? 2 : 4,
    rounds: Number(values.rounds ?? (quick ? 1 : 2)),
    rates: (values.rates ?? '1000,3000').split(',').map(Number).filter((n) => n > 0),
    e2eCalls: Number(values['e2e-calls'] ?? (quick ? 300 : 2000)),
    e2eWarmup: quick ? 30 : 100,
  };
  const kinds = (values.servers ?? (quick ? 'ceiling,tollgate,opa-envoy' : SERVER_KINDS.join(','))).split(',') as ServerKind[];
  for (const k of kinds) if (!SERVER_KINDS.includes(k)) throw new Error(`unknown server "${k}" in --servers (one of ${SERVER_KINDS.join(', ')})`);

  // This process hosts the issuer, the verifier client and the end-to-end client: keep it off the server core.
  await run('taskset', ['-a', '-p', '-c', String(LOAD_CORE), String(process.pid)]);

  const root = projectRoot();
  const ghz = benchTool('ghz', 'TOLLGATE_GHZ');
  const opaEnvoy = benchTool('opa-envoy-plugin', 'TOLLGATE_OPA_ENVOY_PLUGIN');
  const envoy = optionalTool('envoy');
  const machine = await describeMachine({ ghz, opaEnvoy, opa: optionalTool('opa') ?? 'opa', envoy });
  const started = new Date();
  const workDir = join(root, 'bench', 'work', timestamp(started));
  mkdirSync(workDir, { recursive: true });

  const issuer = await DevIssuer.start({ port: 0, stateDir: join(workDir, 'issuer') });
  try {
    const audience = defaultConfig().identity.audience[0]!;
    const setup: ServerSetup = {
      identity: { issuerUrl: issuer.url, audience, jwks: issuer.jwks(), algorithms: defaultConfig().identity.algorithms },
      server: 'demo', namespace: 'default', workDir,
      policiesDir: resolve(values.policies ?? join(root, 'policies')), opaEnvoy, echo: values.echo === true,
      nodeFlags: values['node-flags'] ? values['node-flags'].split(' ').filter(Boolean) : [],
    };
    const calls = await buildWorkload({ issuer, audience, server: setup.server, namespace: setup.namespace, authority: '127.0.0.1:10000' });
    const dataFile = join(workDir, 'calldata.json');
    writeGhzData(dataFile, calls);
    process.stderr.write(`[bench] ${calls.length} distinct CheckRequests (${calls.filter((c) => c.allow).length} allowed), servers: ${kinds.join(', ')}\n`);

    const running = await startAll(kinds, setup, calls);
    try {
      await measureAll(running, dataFile, ghz, phases, workDir);
    } finally {
      for (const r of running) if (r.server) await stopServer(r.server);
    }
    const results = running.map((r) => r.result);

    let e2e: EndToEndResult | null = null;
    if (values['no-e2e']) {
      process.stderr.write('[bench] end to end skipped (--no-e2e)\n');
    } else if (!envoy) {
      process.stderr.write('[bench] end to end skipped: envoy is not installed (make deps)\n');
    } else {
      process.stderr.write(`[bench] end to end: ${phases.e2eCalls} calls per path\n`);
      e2e = await runEndToEnd({
        issuer, audience, setup, calls: phases.e2eCalls, warmup: phases.e2eWarmup,
        startTollgate: () => startTollgate(setup, { decisionLog: true }),
        startOpaEnvoy: kinds.includes('opa-envoy') ? () => startOpaEnvoy(setup) : null,
      });
    }

    const report = renderReport(results, phases.rates, e2e);
    process.stdout.write(`\n${report}\n`);
    const record = {
      startedAt: started.toISOString(),
      finishedAt: new Date().toISOString(),
      quick,
      tollgateNodeFlags: setup.nodeFlags,
      machine,
      method: {
        serverCore: SERVER_CORE, loadCore: LOAD_CORE, phases, saturation: SATURATION, fixed: FIXED,
        workload: { distinctRequests: calls.length, allowed: calls.filter((c) => c.allow).length, labels: calls.map((c) => c.label) },
      },
      servers: results,
      rounds: running.map((r) => ({ kind: r.kind, ...r.rounds })),
      endToEnd: e2e,
      targets: evaluateTargets(results),
    };
    const outDir = resolve(values.out ?? join(root, 'bench', 'results'));
    mkdirSync(outDir, { recursive: true });
    const json = JSON.stringify(record, null, 2) + '\n';
    const file = join(outDir, `${timestamp(started)}.json`);
    writeFileSync(file, json);
    writeFileSync(join(outDir, 'latest.json'), json);
    process.stdout.write(`\nraw results: ${file}\n`);
    return results.some((r) => r.error || r.decisions.mismatches.length) ? 1 : 0;
  } finally {
    await issuer.close();
    rmSync(workDir, { recursive: true, force: true });
  }
}

main(process.argv.slice(2)).then((code) => process.exit(code), (e: Error) => {
  process.stderr.write(`bench: ${e.message}\n`);
  process.exit(1);
});
