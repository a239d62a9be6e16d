import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { DEFAULT_NATS_SETTINGS } from '../../src/budget/config.js';
import { decodeUsageState } from '../../src/budget/lease.js';
import { usageKey } from '../../src/budget/nats-store.js';
import { windowAt } from '../../src/budget/window.js';
import type { SigningKey } from '../../src/bundle/keys.js';
import type { BundlePublisher } from '../../src/controlplane/publisher.js';
import type { BundleFiles } from '../../src/bundle/archive.js';
import type { NatsTlsFiles } from '../../src/nats/settings.js';
import { DEFAULT_RESOURCES } from '../../src/nats/permissions.js';
import { cpuSeconds, currentRss, RssSampler } from '../proc.js';
import { budgetSpecs, checkPlan, overshootBound, sidecarsCharging, splitRanges, type TrafficPlan } from './plan.js';
import { noRefusals, type RefusalCounts } from './refusals.js';
import { wallNow } from './sidecar.js';
import { cpuPercent, summarize } from './stats.js';
import type { BudgetOutcome, FromWorker, ScaleResult, ServerUsage, ToWorker, WorkerReport, WorkerSetup } from './types.js';

/**
 * The core of `make bench-nats-scale`, against a running NATS cluster: forks worker processes that
 * host the simulated sidecars (worker.ts), lets them call for `plan.trafficSec`, publishes bundles
 * under that load, then stops them and checks their numbers against what NATS holds: records in
 * the stream, `used` in each budget's KV entry.
 */

export interface ScaleRunOptions {
  servers: string[];
  /** nats-server processes to measure (CPU over the traffic phase, RSS). */
  natsProcesses: Array<{ name: string; pid: number }>;
  /** Control-plane connection: publishes bundles, reads stream state. */
  control: NatsConnection;
  /** Reviewer connection: reads the budget entries (the control plane may not). */
  reader: NatsConnection;
  publisher: BundlePublisher;
  signing: SigningKey;
  verificationKeyPem: string;
  bundle: BundleFiles;
  /** Files of the credential every simulated sidecar connects with. */
  authzTls: NatsTlsFiles | null;
  plan: TrafficPlan;
  workers: number;
  perConnection: number;
  /** Bundles published during the traffic phase. */
  publishes: number;
  workDir: string;
  seed?: number;
  log?: (m: string) => void;
}

const R = DEFAULT_RESOURCES;
const DECISION_STREAM = R.decisions;
/** The mesh's streams, for their sizes (the control plane may read each one's info, not list them). */
const MESH_STREAMS = [`OBJ_${R.bundles}`, `KV_${R.pointer}`, `KV_${R.budgetUsage}`, `KV_${R.budgetConfig}`, R.decisions, `KV_${R.pins}`, `KV_${R.toolsSeen}`];
const WORKER = join(fileURLToPath(new URL('.', import.meta.url)), 'worker.ts');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A forked worker with a typed message queue. */
class WorkerHandle {
  private readonly queue: FromWorker[] = [];
  private waiter: (() => void) | null = null;
  private exitError: string | null = null;

  constructor(readonly child: ChildProcess, readonly size: number) {
    child.on('message', (m: FromWorker) => { this.queue.push(m); this.waiter?.(); });
    child.on('exit', (code, signal) => {
      this.exitError = `simulator worker exited (${signal ?? `code ${code}`}) before answering`;
      this.waiter?.();
    });
  }

  send(m: ToWorker): void { this.child.send(m); }

  /** Sidecars started so far (progress messages). */
  started = 0;

  /**
   * The next message of `type`; a `failed` message or an exit throws, with the worker's reason.
   * The wait is `timeoutMs` without news: each progress message starts it again.
   */
  async next<T extends FromWorker['type']>(type: T, timeoutMs: number): Promise<Extract<FromWorker, { type: T }>> {
    let deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.queue.length) {
        const m = this.queue.shift()!;
        if (m.type === 'failed') throw new Error(`simulator worker failed: ${m.message}`);
        if (m.type === type) return m as Extract<FromWorker, { type: T }>;
        if (m.type === 'progress') {
          this.started = m.started;
          deadline = Date.now() + timeoutMs;
        }
      }
      if (this.exitError) throw new Error(this.exitError);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`simulator worker sent no "${type}" and no progress for ${timeoutMs} ms (${this.started} of its ${this.size} sidecars started)`);
      await new Promise<void>((r) => { const t = setTimeout(r, left); this.waiter = () => { clearTimeout(t); r(); }; });
      this.waiter = null;
    }
  }

  /** Messages of a kind that arrived so far (swap notices), taken off the queue. */
  take(type: FromWorker['type']): FromWorker[] {
    const got = this.queue.filter((m) => m.type === type);
    for (const m of got) this.queue.splice(this.queue.indexOf(m), 1);
    return got;
  }
}

async function streamSeq(jsm: JetStreamManager, name: string): Promise<number> {
  return (await jsm.streams.info(name)).state.last_seq;
}

/** Runs one sidecar count; throws if the tool measured nothing it promised to. */
export async function runScale(o: ScaleRunOptions): Promise<ScaleResult> {
  const plan = checkPlan(o.plan);
  const log = o.log ?? (() => undefined);
  const runId = randomBytes(3).toString('hex');
  const budgetNames = Array.from({ length: plan.budgets }, (_, t) => `sim-${runId}-team-${t}`);
  const jsm = await jetstreamManager(o.control);
  if (!(await o.publisher.current())) await o.publisher.publish(o.bundle, o.signing);

  const ranges = splitRanges(plan.sidecars, o.workers);
  const handles = ranges.map((r) => {
    const child = fork(WORKER, [], { execArgv: ['--import', 'tsx'], serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    return new WorkerHandle(child, r.to - r.from);
  });
  const started = performance.now();
  try {
    handles.forEach((h, j) => {
      const setup: WorkerSetup = {
        servers: o.servers, tls: o.authzTls, verificationKey: o.verificationKeyPem, plan, from: ranges[j]!.from, to: ranges[j]!.to,
        perConnection: o.perConnection, budgetNames, workDir: join(o.workDir, runId), seed: o.seed ?? 1, runId,
      };
      h.send({ type: 'setup', setup });
    });
    const progress = setInterval(() => {
      log(`  ${handles.reduce((a, h) => a + h.started, 0)} of ${plan.sidecars} sidecars started after ${((performance.now() - started) / 1000).toFixed(0)} s`);
    }, 30_000);
    try {
      await Promise.all(handles.map((h) => h.next('ready', 120_000)));
    } finally {
      clearInterval(progress);
    }
    const startSec = (performance.now() - started) / 1000;
    log(`  ${plan.sidecars} sidecars connected and bundle loaded in ${startSec.toFixed(1)} s`);

    const kvStream = `KV_${DEFAULT_NATS_SETTINGS.bucket}`;
    const seq0 = await streamSeq(jsm, kvStream);
    const cpu0 = o.natsProcesses.map((p) => cpuSeconds(p.pid) ?? Number.NaN);
    const rss = o.natsProcesses.map((p) => new RssSampler(p.pid, 500));
    const t0 = performance.now();
    for (const h of handles) h.send({ type: 'traffic' });

    const publishes: Array<{ revision: string; startedAt: number; publishMs: number }> = [];
    for (let k = 1; k <= o.publishes; k++) {
      await sleep(Math.max(0, t0 + (plan.trafficSec * 1000 * k) / (o.publishes + 1) - performance.now()));
      const startedAt = wallNow();
      const pointer = await o.publisher.publish(o.bundle, o.signing);
      const revision = String(pointer.revision);
      publishes.push({ revision, startedAt, publishMs: wallNow() - startedAt });
      // Waits for every worker to say all its sidecars run the new revision (or gives up after 60 s).
      const deadline = Date.now() + 60_000;
      let everywhere = true;
      for (const h of handles) {
        const seen = (): boolean => h.take('swapped').some((m) => m.type === 'swapped' && m.revision === revision);
        // take() consumes the messages: remember the answer rather than asking twice.
        let got = seen();
        while (!got && Date.now() < deadline) { await sleep(20); got = seen(); }
        // Said as it is: a worker still waiting at the deadline means not every sidecar had it.
        if (!got) everywhere = false;
      }
      const where = everywhere ? 'in force everywhere after' : 'NOT in force everywhere within the 60 s wait; gave up after';
      log(`  revision ${revision} published (${publishes.at(-1)!.publishMs.toFixed(0)} ms) and ${where} ${(wallNow() - startedAt).toFixed(0)} ms`);
    }
    await sleep(Math.max(0, t0 + plan.trafficSec * 1000 - performance.now()));
    const wallSec = (performance.now() - t0) / 1000;
    const cpu1 = o.natsProcesses.map((p) => cpuSeconds(p.pid) ?? Number.NaN);
    const seq1 = await streamSeq(jsm, kvStream);
    const servers: ServerUsage[] = o.natsProcesses.map((p, j) => ({
      name: p.name, cpuPercent: cpuPercent(cpu0[j]!, cpu1[j]!, wallSec),
      rssMiB: (currentRss(p.pid) ?? Number.NaN) / 2 ** 20, peakRssMiB: rss[j]!.stop() / 2 ** 20,
    }));

    for (const h of handles) h.send({ type: 'stop' });
    const reports: WorkerReport[] = (await Promise.all(handles.map((h) => h.next('done', 120_000)))).map((m) => m.report);
    return await collect({ o, plan, startSec, runId, budgetNames, jsm, reports, publishes, wallSec, leaseWrites: seq1 - seq0, servers });
  } finally {
    for (const h of handles) if (h.child.exitCode === null && h.child.signalCode === null) h.child.kill('SIGKILL');
  }
}

interface Collected {
  o: ScaleRunOptions;
  startSec: number;
  plan: TrafficPlan;
  runId: string;
  budgetNames: string[];
  jsm: JetStreamManager;
  reports: WorkerReport[];
  publishes: Array<{ revision: string; startedAt: number; publishMs: number }>;
  wallSec: number;
  leaseWrites: number;
  servers: ServerUsage[];
}

/** Reduces the workers' reports and checks them against what NATS holds. */
async function collect(c: Collected): Promise<ScaleResult> {
  const { plan, reports } = c;
  const sidecars = reports.flatMap((r) => r.sidecars);
  const warnings = reports.flatMap((r) => r.warnings);

  const propagation = c.publishes.map((p) => {
    const times = sidecars.map((s) => s.swaps[p.revision]).filter((t): t is number => t !== undefined).map((t) => t - p.startedAt);
    return { revision: p.revision, publishMs: p.publishMs, toAll: summarize(times), reached: times.length };
  });

  // Records of this run, per subject (one subject per simulated sidecar).
  const info = await c.jsm.streams.info(DECISION_STREAM, { subjects_filter: 'tollgate.decisions.sim.>' });
  const ours = `tollgate.decisions.sim.sim-${c.runId}-`;
  let inStream = 0;
  for (const [subject, n] of Object.entries(info.state.subjects ?? {})) if (subject.startsWith(ours)) inStream += n;

  const kv = await new Kvm(c.o.reader).open(DEFAULT_NATS_SETTINGS.bucket);
  const specs = budgetSpecs(c.budgetNames, plan);
  const budgets: BudgetOutcome[] = [];
  for (const [t, spec] of specs.entries()) {
    const e = await kv.get(usageKey(spec.name, windowAt(spec.window, spec.timezone, Date.now()).key));
    const st = e && e.operation === 'PUT' ? decodeUsageState(new TextDecoder().decode(e.value)) : null;
    const [used, committed] = [st?.reported ?? 0, st?.committed ?? 0];
    const charged = reports.reduce((a, r) => a + (r.charged[spec.name] ?? 0), 0);
    const n = sidecarsCharging(t, plan);
    budgets.push({ name: spec.name, limit: spec.limit, used, committed, charged, overshoot: Math.max(0, charged - spec.limit), bound: overshootBound(n, plan.resultTokens[1]), sidecars: n });
  }

  const streams = [];
  for (const name of MESH_STREAMS) {
    const s = await c.jsm.streams.info(name).catch(() => null);
    if (s) streams.push({ name, messages: s.state.messages, bytes: s.state.bytes, replicas: s.config.num_replicas });
  }

  const offered = sidecars.reduce((a, s) => a + s.offered, 0);
  const acked = sidecars.reduce((a, s) => a + s.acked, 0);
  const cpuSec = reports.reduce((a, r) => a + r.cpuSec, 0);
  return {
    sidecars: plan.sidecars, workers: reports.length, connections: reports.reduce((a, r) => a + Math.ceil(r.sidecars.length / c.o.perConnection), 0),
    trafficSec: c.wallSec, propagation,
    lease: { writesPerSec: c.leaseWrites / c.wallSec, budgets, crowdedOut: sidecars.reduce((a, s) => a + s.crowdedOut, 0) },
    log: {
      offered, acked, inStream, perSec: offered / c.wallSec, publishMs: summarize(sidecars.flatMap((s) => s.publishMs)),
      failures: sidecars.reduce((a, s) => a + s.failures, 0),
    },
    calls: { allowed: sidecars.reduce((a, s) => a + s.allowed, 0), refused: sumRefusals(sidecars.map((s) => s.refused)) },
    restarts: sidecars.reduce((a, s) => a + s.restarts, 0), startSec: c.startSec,
    servers: c.servers, streams,
    simulator: { cpuPercent: cpuPercent(0, cpuSec, c.wallSec), peakRssMiB: reports.reduce((a, r) => a + r.peakRssBytes, 0) / 2 ** 20 },
    warnings,
  };
}

function sumRefusals(all: RefusalCounts[]): RefusalCounts {
  const out = noRefusals();
  for (const r of all) for (const k of Object.keys(out) as Array<keyof RefusalCounts>) out[k] += r[k];
  return out;
}
