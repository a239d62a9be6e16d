import type { NatsConnection } from '@nats-io/transport-node';
import type { KubernetesObject } from '@kubernetes/client-node';
import { DEFAULT_NATS_SETTINGS } from '../budget/config.js';
import { openBudgetBuckets } from '../budget/nats-store.js';
import { InlinePolicyPublisher } from '../controlplane/inline-policy.js';
import type { SigningKey } from '../bundle/keys.js';
import { budgetHandler } from './budgets.js';
import type { KubeClient } from './kube-client.js';
import { LeaderElector } from './leader.js';
import { policyHandler } from './policies.js';
import { WorkQueue } from './queue.js';
import { reconcile, type Handler, type ReconcileLog } from './reconcile.js';
import type { MeshSettings } from './server-objects.js';
import { serverHandler, type PendingToolsReader } from './servers.js';
import { virtualServerHandler } from './virtual-servers.js';
import { Kvm } from '@nats-io/kv';
import type { ApproverKey } from '../pins/approval.js';
import { PINS_BUCKET, SEEN_BUCKET } from '../pins/buckets.js';
import { readPinned, readSeen } from '../pins/read.js';
import { pendingTools } from '../pins/review.js';
import type { CommonStatus, CustomResource, Kind, McpPolicy, TokenBudget } from './types.js';

/**
 * `tollgate operator`: watches MCPServer, MCPPolicy and TokenBudget objects and reconciles them,
 * on the replica that holds the Lease. Informers feed a work queue of keys; every reconcile reads
 * the object fresh, so a missed or duplicated event only costs a redundant pass. A periodic resync
 * re-queues everything (drifted children, budget consumption in status).
 */

export interface OperatorOptions {
  kube: KubeClient;
  nats: NatsConnection;
  signingKey: SigningKey;
  mesh: MeshSettings;
  leaseNamespace: string;
  leaseName?: string;
  identity: string;
  leaseDurationMs?: number;
  resyncMs?: number;
  budgetBuckets?: { bucket: string; configBucket: string };
  /** Approver keys that pins must verify with to count in MCPServer status; unset: read unverified (display only). */
  pinApproverKeys?: ApproverKey[];
  log: ReconcileLog & { error(obj: Record<string, unknown>, msg: string): void };
}

type AnyHandler = Handler<unknown, CommonStatus>;
type Watched = CustomResource<unknown, CommonStatus> & KubernetesObject;

interface Running {
  informers: { kind: Kind; informer: ReturnType<KubeClient['informer']> }[];
  queue: WorkQueue;
  resync: NodeJS.Timeout;
}

export class Operator {
  private readonly elector: LeaderElector;
  private running: Running | null = null;
  private handlers: Map<Kind, AnyHandler> | null = null;
  private starting: Promise<void> | null = null;

  constructor(private readonly opts: OperatorOptions) {
    this.elector = new LeaderElector(opts.kube, {
      namespace: opts.leaseNamespace, name: opts.leaseName ?? 'tollgate-operator', identity: opts.identity,
      ...(opts.leaseDurationMs ? { leaseDurationMs: opts.leaseDurationMs } : {}),
    }, {
      started: () => { this.starting = this.lead().catch((e: Error) => opts.log.error({ err: e.message }, 'could not start reconciling')); },
      stopped: () => { void this.follow(); },
      error: (e) => opts.log.warn({ err: e.message }, 'leader election'),
    });
  }

  get isLeader(): boolean { return this.elector.isLeader; }

  start(): void {
    this.elector.start();
  }

  async stop(): Promise<void> {
    await this.elector.stop();
    await this.follow();
  }

  /** Resolves when the queue has nothing left to do (tests). */
  async settled(): Promise<void> {
    await this.starting;
    await this.running?.queue.drained();
  }

  private async buildHandlers(): Promise<Map<Kind, AnyHandler>> {
    const { kv, cfg } = await openBudgetBuckets(this.opts.nats, {
      bucket: this.opts.budgetBuckets?.bucket ?? DEFAULT_NATS_SETTINGS.bucket,
      configBucket: this.opts.budgetBuckets?.configBucket ?? DEFAULT_NATS_SETTINGS.configBucket,
      timeoutMs: DEFAULT_NATS_SETTINGS.timeoutMs,
    });
    // The control plane creates the buckets; the operator's credential may only open them.
    const publisher = new InlinePolicyPublisher(this.opts.nats, this.opts.signingKey, { create: false });
    const cached = (kind: Kind): Watched[] => (this.running?.informers.find((i) => i.kind === kind)?.informer.list() ?? []) as Watched[];
    const allBudgets = (): TokenBudget[] => cached('TokenBudget') as unknown as TokenBudget[];
    const inNamespace = (kind: Kind, ns: string): Watched[] => cached(kind).filter((o) => o.metadata.namespace === ns);
    const pins = await this.pendingToolsReader();
    return new Map<Kind, AnyHandler>([
      ['MCPServer', serverHandler(this.opts.kube, this.opts.mesh, pins) as unknown as AnyHandler],
      ['VirtualMCPServer', virtualServerHandler(this.opts.kube, this.opts.mesh) as unknown as AnyHandler],
      ['MCPPolicy', policyHandler({
        publisher,
        policiesIn: (ns) => inNamespace('MCPPolicy', ns) as unknown as McpPolicy[],
        serversIn: (ns) => inNamespace('MCPServer', ns).map((o) => o.metadata.name),
      }) as unknown as AnyHandler],
      ['TokenBudget', budgetHandler({ all: allBudgets, configBucket: cfg, usageBucket: kv }) as unknown as AnyHandler],
    ]);
  }

  /** Pins vs. what servers offer, for MCPServer status; none when the pin buckets are missing. */
  private async pendingToolsReader(): Promise<PendingToolsReader | undefined> {
    try {
      const kvm = new Kvm(this.opts.nats);
      const pinKv = await kvm.open(PINS_BUCKET);
      const seenKv = await kvm.open(SEEN_BUCKET);
      await Promise.all([pinKv.status(), seenKv.status()]);
      const keys = this.opts.pinApproverKeys ?? null;
      return { pending: async (server) => pendingTools(await readSeen(seenKv, server), await readPinned(pinKv, keys, server)) };
    } catch (e) {
      this.opts.log.warn({ err: (e as Error).message }, 'no tool-pinning buckets: MCPServer status shows no pending tool changes');
      return undefined;
    }
  }

  private async lead(): Promise<void> {
    this.opts.log.info({ identity: this.opts.identity }, 'leading: reconciling MCPServer, MCPPolicy, TokenBudget and VirtualMCPServer');
    this.handlers ??= await this.buildHandlers();
    const handlers = this.handlers;
    const queue = new WorkQueue(async (key) => {
      const [kind, namespace, name] = key.split('/') as [Kind, string, string];
      await reconcile(this.opts.kube, handlers.get(kind)!, namespace, name, this.opts.log);
    }, { onError: (key, e, retryInMs) => this.opts.log.warn({ key, err: e.message, retryInMs }, 'reconcile failed; will retry') });
    const informers = (['MCPServer', 'MCPPolicy', 'TokenBudget', 'VirtualMCPServer'] as Kind[]).map((kind) => {
      const informer = this.opts.kube.informer<unknown, CommonStatus>(kind);
      const enqueue = (o: Watched): void => queue.add(`${kind}/${o.metadata.namespace}/${o.metadata.name}`);
      informer.on('add', enqueue);
      informer.on('update', enqueue);
      informer.on('delete', enqueue);
      informer.on('error', (e: unknown) => {
        this.opts.log.warn({ kind, err: (e as Error)?.message ?? String(e) }, 'watch failed; restarting it');
        setTimeout(() => { if (this.running?.informers.some((i) => i.informer === informer)) void informer.start(); }, 2000).unref();
      });
      return { kind, informer };
    });
    const resync = setInterval(() => {
      for (const { kind, informer } of informers) for (const o of informer.list() as Watched[]) queue.add(`${kind}/${o.metadata.namespace}/${o.metadata.name}`);
    }, this.opts.resyncMs ?? 30_000);
    resync.unref();
    this.running = { informers, queue, resync };
    await Promise.all(informers.map((i) => i.informer.start()));
  }

  private async follow(): Promise<void> {
    const r = this.running;
    if (!r) return;
    this.running = null;
    this.opts.log.info({ identity: this.opts.identity }, 'not leading: stopped reconciling');
    clearInterval(r.resync);
    r.queue.stop();
    await Promise.all(r.informers.map((i) => i.informer.stop().catch(() => undefined)));
  }
}
