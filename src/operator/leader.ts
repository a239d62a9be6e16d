import type { V1Lease } from '@kubernetes/client-node';
import { isConflict, microTime, type KubeClient } from './kube-client.js';

/**
 * Leader election on a coordination.k8s.io Lease, the same protocol client-go uses: the holder
 * renews `renewTime` every `renewMs`; anyone may take the Lease once `leaseDurationSeconds` passed
 * without a renewal. Every write carries the resourceVersion read, so two candidates can never both
 * win the same round. Only the leader reconciles; a leader that cannot renew in time steps down.
 */

export interface LeaderOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewMs?: number;
  retryMs?: number;
}

export type LeaseVerdict = 'renew' | 'acquire' | 'wait';

/** Pure: what a candidate should do about the Lease as read. */
export function leaseVerdict(lease: V1Lease | null, identity: string, nowMs: number): LeaseVerdict {
  const spec = lease?.spec;
  if (!spec?.holderIdentity) return 'acquire';
  if (spec.holderIdentity === identity) return 'renew';
  const renewed = spec.renewTime ? new Date(spec.renewTime as unknown as string).getTime() : 0;
  const durationMs = (spec.leaseDurationSeconds ?? 15) * 1000;
  return Number.isFinite(renewed) && nowMs - renewed < durationMs ? 'wait' : 'acquire';
}

export class LeaderElector {
  private timer: NodeJS.Timeout | null = null;
  private leading = false;
  private stopped = false;
  private lastRenew = 0;
  private readonly durationMs: number;
  private readonly renewMs: number;
  private readonly retryMs: number;

  constructor(
    private readonly kube: KubeClient,
    private readonly opts: LeaderOptions,
    private readonly callbacks: { started: () => void; stopped: () => void; error?: (e: Error) => void },
  ) {
    this.durationMs = opts.leaseDurationMs ?? 15_000;
    this.renewMs = opts.renewMs ?? Math.floor(this.durationMs / 3);
    this.retryMs = opts.retryMs ?? 2000;
  }

  get isLeader(): boolean { return this.leading; }

  start(): void {
    this.stopped = false;
    void this.round();
  }

  /** Stops campaigning; a leader gives the Lease up so a standby takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.leading) {
      this.leading = false;
      this.callbacks.stopped();
      await this.release().catch((e: Error) => this.callbacks.error?.(e));
    }
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.round(), ms);
    this.timer.unref();
  }

  private lease(prev: V1Lease | null, now: number, transition: boolean): V1Lease {
    const spec = prev?.spec ?? {};
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { ...(prev?.metadata ?? {}), name: this.opts.name, namespace: this.opts.namespace },
      spec: {
        holderIdentity: this.opts.identity,
        leaseDurationSeconds: Math.ceil(this.durationMs / 1000),
        acquireTime: transition ? microTime(now) : spec.acquireTime ?? microTime(now),
        renewTime: microTime(now),
        leaseTransitions: (spec.leaseTransitions ?? 0) + (transition && prev ? 1 : 0),
      },
    };
  }

  private async round(): Promise<void> {
    if (this.stopped) return;
    try {
      const now = Date.now();
      const current = await this.kube.getLease(this.opts.namespace, this.opts.name);
      const verdict = leaseVerdict(current, this.opts.identity, now);
      if (verdict === 'wait') {
        this.stepDown();
      } else {
        const next = this.lease(current, now, verdict === 'acquire');
        if (current) await this.kube.replaceLease(next);
        else await this.kube.createLease(next);
        this.lastRenew = now;
        if (!this.leading && !this.stopped) {
          this.leading = true;
          this.callbacks.started();
        }
      }
    } catch (e) {
      // A lost race (409) just means someone else wrote first: read again next round.
      if (!isConflict(e)) this.callbacks.error?.(e as Error);
      // Unable to renew for a whole lease: another replica may already lead. Stop acting.
      if (this.leading && Date.now() - this.lastRenew >= this.durationMs - this.retryMs) this.stepDown();
    }
    this.schedule(this.leading ? this.renewMs : this.retryMs);
  }

  private stepDown(): void {
    if (!this.leading) return;
    this.leading = false;
    this.callbacks.stopped();
  }

  private async release(): Promise<void> {
    const current = await this.kube.getLease(this.opts.namespace, this.opts.name);
    if (current?.spec?.holderIdentity !== this.opts.identity) return;
    // An expired renewTime and no holder: the next candidate acquires without waiting.
    await this.kube.replaceLease({ ...current, spec: { ...current.spec, holderIdentity: undefined, renewTime: microTime(0) } });
  }
}
