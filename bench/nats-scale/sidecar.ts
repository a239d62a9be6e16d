import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_NATS_SETTINGS, type BudgetSpec, type NatsBudgetSettings } from '../../src/budget/config.js';
import { createBudgetGate, type TollgateBudgetGate } from '../../src/budget/gate.js';
import { NatsBudgetStore } from '../../src/budget/nats-store.js';
import type { ChargeSubject } from '../../src/budget/types.js';
import type { VerificationKey } from '../../src/bundle/keys.js';
import { advance, chainRecord, GENESIS, type ChainHead } from '../../src/decisionlog/chain.js';
import { resolveDecisionLogConfig } from '../../src/decisionlog/config.js';
import { NatsReplica } from '../../src/decisionlog/nats-sink.js';
import { DECISION_RECORD_SCHEMA, type DecisionRecordDraft } from '../../src/decisionlog/types.js';
import type { NatsLink } from '../../src/nats/connect.js';
import { identityToken } from '../../src/nats/identity.js';
import { PolicyHolder } from '../../src/policy/holder.js';
import { NatsBundleSource } from '../../src/policy/sources/nats.js';
import type { PolicyLoader } from '../../src/policy/sources/types.js';
import { poissonGapMs, seededRandom, teamsOf, uniformInt, type TrafficPlan } from './plan.js';
import { noRefusals, refusalKind } from './refusals.js';
import type { SidecarReport } from './types.js';
import { sampleInput } from '../../test/unit/decisionlog/fixtures.js';

/**
 * One simulated authz sidecar: the NATS clients a real authz runs, built from the same classes,
 * on a connection it may share with other simulated sidecars of the process:
 * - the bundle watcher (NatsBundleSource: pointer watch, object-store fetch, signature check);
 * - the budget lease taker (NatsBudgetStore behind the Check path's budget gate), one lease per
 *   declared budget as every authz replica holds;
 * - the decision-log replica (NatsReplica: one publish at a time, acked, de-duplicated by id).
 * What it leaves out is the work that never touches NATS: the WASM policy is not compiled (the
 * loader below keeps the verified bundle's revision and denies), and records are not written to a
 * local file first.
 */

/** Verified bundles are not compiled: WASM compilation is sidecar CPU, not NATS load. */
const revisionOnly: PolicyLoader = async (_files, o) => ({
  revision: o.revision ?? 'unknown',
  evaluate: () => ({ allow: false, reasons: ['simulated sidecar: no policy evaluated'], headers: {}, httpStatus: null, mask: [], cost: null }),
});

export interface SidecarOptions {
  id: number;
  runId: string;
  link: NatsLink;
  keys: readonly VerificationKey[];
  plan: TrafficPlan;
  budgets: BudgetSpec[];
  workDir: string;
  seed: number;
  onSwap: (revision: string, atMs: number) => void;
  warn: (message: string) => void;
}

export const wallNow = (): number => performance.timeOrigin + performance.now();

export class SimSidecar {
  private source: NatsBundleSource | null = null;
  private gate: TollgateBudgetGate | null = null;
  private store: NatsBudgetStore | null = null;
  private replica: NatsReplica | null = null;
  private head: ChainHead = GENESIS;
  private readonly offeredAt = new Map<number, number>();
  private readonly report: SidecarReport;
  private running = false;
  private traffic: Promise<void> | null = null;
  private readonly rand: () => number;
  private readonly name: string;

  constructor(private readonly o: SidecarOptions) {
    this.name = `sim-${o.runId}-${o.id}`;
    this.rand = seededRandom(o.seed * 1_000_003 + o.id);
    this.report = { id: o.id, swaps: {}, offered: 0, acked: 0, failures: 0, publishMs: [], allowed: 0, refused: noRefusals(), restarts: 0, crowdedOut: 0 };
  }

  /** Starts the three clients; resolves once a first bundle is in force (leases come with the first calls). */
  async start(): Promise<void> {
    const { link } = this.o;
    // On a loaded machine hundreds of TLS handshakes take a while; the budget store allows 5 s.
    await link.ready(120_000);
    const holder = new PolicyHolder();
    this.source = new NatsBundleSource({ holder, nats: link, keys: this.o.keys, load: revisionOnly, retryMs: 500 });
    this.source.events.on('swapped', ({ revision }) => {
      const at = wallNow();
      this.report.swaps[revision] = at;
      this.o.onSwap(revision, at);
    });
    await this.source.start();
    const settings: NatsBudgetSettings = { ...DEFAULT_NATS_SETTINGS, url: '' };
    let store: NatsBudgetStore | null = null;
    // authz refuses to start when the budget buckets do not answer in time, and its pod restarts:
    // a few attempts, counted, stand in for those restarts.
    for (let attempt = 1; !store; attempt++) {
      try {
        store = await NatsBudgetStore.open(this.o.budgets, settings, link, {
          replicaId: this.name, recordDefinitions: false, logger: {
            // Crowded-out syncs are counted (crowdedOut); logging each would push every other warning out.
            warn: (obj, msg) => { if (!/compare-and-set round/.test(msg)) this.o.warn(`${this.name}: ${msg} ${JSON.stringify(obj)}`); },
          },
        });
      } catch (e) {
        if (attempt >= 10) throw new Error(`${this.name}: budget store did not open after ${attempt} attempts: ${(e as Error).message}`, { cause: e });
        this.report.restarts++;
        await sleep(1000 * attempt);
      }
    }
    this.store = store;
    this.gate = createBudgetGate({ budgets: this.o.budgets }, store);
    const log = resolveDecisionLogConfig({ dir: '/unused', nats: { url: 'nats://unused:4222' } }).nats!;
    this.replica = new NatsReplica({
      ...log, link, writer: link.identity ? identityToken(link.identity) : null, queueDir: join(this.o.workDir, this.name),
      localLogDir: null, warn: (m) => this.o.warn(`${this.name}: ${m}`),
      onAcked: (seq) => {
        const t0 = this.offeredAt.get(seq);
        if (t0 === undefined) return;
        this.offeredAt.delete(seq);
        this.report.acked++;
        this.report.publishMs.push(wallNow() - t0);
      },
    }, 0);
    await this.source.whenLoaded(120_000);
  }

  get revision(): string | null { return this.source?.status().revision ?? null; }

  startTraffic(): void {
    this.running = true;
    this.traffic = this.loop();
  }

  /** The Check path as authz runs it for one call: budget check, charge, record; the result later. */
  private async loop(): Promise<void> {
    const p = this.o.plan;
    const teams = teamsOf(this.o.id, p);
    // Sidecars start at random phases, as pods do.
    await sleep(this.rand() * (1000 / p.callsPerSec));
    let call = 0;
    while (this.running) {
      const team = teams[call % teams.length]!;
      call++;
      const subject: ChargeSubject = { team: `team-${team}`, agent: 'agent', sub: `user-${this.o.id}`, server: this.name, tool: 'search' };
      const args = uniformInt(this.rand, p.argsTokens);
      const result = uniformInt(this.rand, p.resultTokens);
      // As Check does: the first call of a team waits for this sidecar's first lease on its budget.
      const loading = this.gate!.prepare(subject);
      if (loading) await loading;
      const check = this.gate!.check(subject, args);
      const allow = check.exhausted === null;
      this.record(call, subject, allow, args);
      if (allow) {
        this.report.allowed++;
        this.gate!.charge(subject, args);
        await sleep(uniformInt(this.rand, p.callMs));
        // The result is charged after it was passed on, as ext_proc does.
        this.gate!.charge(subject, result);
      } else {
        this.report.refused[refusalKind(check.reason)]++;
      }
      if (this.running) await sleep(poissonGapMs(this.rand, p.callsPerSec));
    }
  }

  private record(call: number, s: ChargeSubject, allow: boolean, args: number): void {
    const draft: DecisionRecordDraft = {
      schema: DECISION_RECORD_SCHEMA,
      decision_id: `${this.name}-${call}`,
      timestamp: new Date().toISOString(),
      trace_id: null,
      labels: { id: this.name, app: 'tollgate', version: 'sim', instance: this.name },
      path: 'tollgate/authz/decision',
      bundles: { tollgate: { revision: this.revision ?? 'none' } },
      identity: { sub: s.sub, iss: 'https://issuer.sim', team: s.team, agent: s.agent, delegation: [] },
      mcp: { server: this.name, namespace: 'sim', method: 'tools/call', tool: s.tool, id: call, session_id: `sess-${this.o.id}`, batch_size: null },
      // A policy input shaped as authz builds it, arguments about as long as their token count.
      input: sampleInput({ query: 'x'.repeat(Math.min(args * 4, 800)) }, { tool: 'search', server: this.name, namespace: 'sim' }),
      result: { allow, reasons: allow ? [] : ['budget exhausted'], http_status: 200, code: allow ? null : -32004, error: null },
      budget: null,
      tokens: { request: args, response: null },
      metrics: { timer_eval_ns: 50_000, timer_total_ns: 200_000 },
      erased: [],
      masked: [],
    };
    const entry = chainRecord(draft, this.head);
    this.head = advance(entry);
    this.offeredAt.set(entry.record.seq, wallNow());
    this.report.offered++;
    this.replica!.offer(entry);
  }

  /** Stops calls, lets the last results be charged, drains the log replica and returns leases. */
  async stop(drainMs: number): Promise<SidecarReport> {
    this.running = false;
    await this.traffic;
    if (this.replica) {
      await Promise.race([this.replica.drained(), sleep(drainMs)]);
      this.report.failures = this.replica.stats().failures;
      await this.replica.close(1000);
    }
    await this.gate?.close();
    this.report.crowdedOut = this.store?.contentionCount ?? 0;
    await this.source?.stop();
    return this.report;
  }

  /** Tokens this sidecar's Checks charged, per budget name. */
  charged(): Map<string, number> {
    return this.gate?.metrics.chargedTokens ?? new Map();
  }
}
