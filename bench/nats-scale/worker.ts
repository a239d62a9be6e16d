import { mkdirSync } from 'node:fs';
import { cpuUsage, memoryUsage } from 'node:process';
import { verificationKeysFromText } from '../../src/bundle/keys.js';
import { NatsLink } from '../../src/nats/connect.js';
import { budgetSpecs } from './plan.js';
import { SimSidecar } from './sidecar.js';
import type { FromWorker, SidecarReport, ToWorker, WorkerReport, WorkerSetup } from './types.js';

/**
 * One worker process of `make bench-nats-scale`: hosts a range of simulated sidecars, started by
 * run.ts with fork() and driven over IPC (setup → ready, traffic, stop → done).
 */

const send = (m: FromWorker): void => { process.send?.(m); };
const WARNINGS_KEPT = 20;

class Worker {
  private readonly links: NatsLink[] = [];
  private readonly sidecars: SimSidecar[] = [];
  private readonly swapCounts = new Map<string, number>();
  private readonly warnings: string[] = [];
  private peakRss = 0;
  private readonly rssTimer = setInterval(() => { this.peakRss = Math.max(this.peakRss, memoryUsage.rss()); }, 500);
  private cpu0 = cpuUsage();

  constructor(private readonly s: WorkerSetup) {}

  private warn(m: string): void {
    if (this.warnings.length < WARNINGS_KEPT) this.warnings.push(m);
  }

  async setup(): Promise<void> {
    const keys = await verificationKeysFromText(this.s.verificationKey, 'bench verification key');
    const budgets = budgetSpecs(this.s.budgetNames, this.s.plan);
    mkdirSync(this.s.workDir, { recursive: true });
    const count = this.s.to - this.s.from;
    // Pods do not all start in the same millisecond: a few dozen at a time, each batch connecting
    // (TLS handshakes) only when its turn comes.
    for (let first = 0; first < count; first += 25) {
      const batch: SimSidecar[] = [];
      for (let i = first; i < Math.min(count, first + 25); i++) {
        if (i % this.s.perConnection === 0) {
          this.links.push(NatsLink.open({ servers: this.s.servers, tls: this.s.tls }, { name: `sim-${this.s.runId}-${this.s.from + i}`, firstConnectMs: 60_000 }));
        }
        batch.push(new SimSidecar({
          id: this.s.from + i, runId: this.s.runId, link: this.links[this.links.length - 1]!, keys, plan: this.s.plan, budgets, workDir: this.s.workDir,
          seed: this.s.seed, onSwap: (revision) => this.swapped(revision), warn: (m) => this.warn(m),
        }));
      }
      this.sidecars.push(...batch);
      await Promise.all(batch.map((sc) => sc.start()));
      send({ type: 'progress', started: this.sidecars.length });
    }
    this.cpu0 = cpuUsage();
    send({ type: 'ready', loaded: this.sidecars.filter((sc) => sc.revision !== null).length });
  }

  private swapped(revision: string): void {
    const n = (this.swapCounts.get(revision) ?? 0) + 1;
    this.swapCounts.set(revision, n);
    if (n === this.sidecars.length) send({ type: 'swapped', revision, count: n });
  }

  traffic(): void {
    for (const sc of this.sidecars) sc.startTraffic();
  }

  async stop(): Promise<void> {
    const reports: SidecarReport[] = await Promise.all(this.sidecars.map((sc) => sc.stop(20_000)));
    const charged: Record<string, number> = {};
    for (const sc of this.sidecars) for (const [k, v] of sc.charged()) charged[k] = (charged[k] ?? 0) + v;
    const cpu = cpuUsage(this.cpu0);
    clearInterval(this.rssTimer);
    await Promise.all(this.links.map((l) => l.close()));
    const report: WorkerReport = { sidecars: reports, charged, cpuSec: (cpu.user + cpu.system) / 1e6, peakRssBytes: Math.max(this.peakRss, memoryUsage.rss()), warnings: this.warnings };
    // Disconnect only once the (large) report has been handed to the channel, or it is lost.
    await new Promise<void>((resolve) => { if (process.send) process.send({ type: 'done', report } satisfies FromWorker, () => resolve()); else resolve(); });
  }
}

let worker: Worker | null = null;
process.on('message', (m: ToWorker) => {
  const run = async (): Promise<void> => {
    if (m.type === 'setup') {
      worker = new Worker(m.setup);
      await worker.setup();
    } else if (m.type === 'traffic') worker?.traffic();
    else if (m.type === 'stop') {
      await worker?.stop();
      process.disconnect?.();
    }
  };
  run().catch((e: Error) => send({ type: 'failed', message: e.stack ?? e.message }));
});
// The parent gone, nothing is left to report to.
process.on('disconnect', () => setTimeout(() => process.exit(0), 2000).unref());
