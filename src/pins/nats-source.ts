import { connect, type NatsConnection, type QueuedIterator } from '@nats-io/transport-node';
import { NatsLink } from '../nats/connect.js';
import { Kvm, type KV, type KvWatchEntry } from '@nats-io/kv';
import { verifyEntry, type ApproverKey, type PinStatement } from './approval.js';
import { PINS_BUCKET, SEEN_BUCKET, parseToolKey, toolKey } from './buckets.js';
import type { Observed, PinStore } from './store.js';

/** One change of the pins in force, for the decision log (an administrative record). */
export interface PinEvent {
  action: 'approve' | 'revoke' | 'removed' | 'rejected';
  server: string;
  tool: string;
  sha256: string | null;
  approver: string | null;
  kid: string | null;
  /** Why an entry was rejected, or how a pin was removed without a signed revocation. */
  note: string | null;
}

export interface PinSourceOptions {
  store: PinStore;
  /** The process's NATS connection (authz passes its one link), or servers to connect to alone (tests). */
  nats: NatsLink | { servers: string | string[] };
  keys: readonly ApproverKey[];
  instance: string;
  onEvent?: (e: PinEvent) => void;
  onError?: (message: string) => void;
  retryMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

/**
 * Follows the pin bucket in NATS KV (as NatsBundleSource follows bundle pointers): every entry is
 * verified against the approver keys and applied to the PinStore; a bad entry is refused and
 * reported, never applied. Also publishes what servers now offer (observations from ext_proc) to
 * the seen bucket, which `tollgate tools pending` reads. Until the first pins arrive every tool is
 * "new": fail closed.
 */
export class NatsPinSource {
  private nc: NatsConnection | null = null;
  private pins: KV | null = null;
  private seen: KV | null = null;
  private watch: QueuedIterator<KvWatchEntry> | null = null;
  private seenWatch: QueuedIterator<KvWatchEntry> | null = null;
  private stopped = true;
  private loop: Promise<void> | null = null;
  private chain: Promise<void> = Promise.resolve();
  lastError: string | null = 'not connected yet';
  /** Entries applied (verified) and refused, since start. */
  readonly stats = { applied: 0, rejected: 0, published: 0, adopted: 0 };

  constructor(private readonly opts: PinSourceOptions) {}

  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.watch?.stop();
    this.seenWatch?.stop();
    if (!(this.opts.nats instanceof NatsLink)) await this.nc?.close().catch(() => undefined);
    await this.loop;
    await this.chain;
  }

  private async run(): Promise<void> {
    const retryMs = this.opts.retryMs ?? 1000;
    while (!this.stopped) {
      try {
        const n = this.opts.nats;
        this.nc ??= n instanceof NatsLink
          ? await n.ready(Math.max(retryMs, 2000))
          : await connect({ servers: n.servers, name: 'tollgate-authz-pins', maxReconnectAttempts: -1, reconnectTimeWait: retryMs });
        // Open, not create: the buckets are the control plane's (controlplane/pins.ts); until they
        // exist every tool is "new" and refused.
        const kvm = new Kvm(this.nc);
        this.pins = await kvm.open(PINS_BUCKET);
        await this.pins.status();
        this.seen = await kvm.open(SEEN_BUCKET);
        this.lastError = null;
        this.republish();
        this.followSeen(this.seen);
        const w = await this.pins.watch();
        this.watch = w;
        if (this.stopped) w.stop();
        for await (const e of w) {
          if (this.stopped) break;
          this.chain = this.chain.then(() => this.apply(e)).catch((err: Error) => this.opts.onError?.(`pin entry ${e.key}: ${err.message}`));
        }
      } catch (e) {
        if (this.stopped) break;
        this.lastError = `NATS ${PINS_BUCKET}: ${(e as Error).message}`;
        this.opts.onError?.(this.lastError);
      }
      if (!this.stopped) await sleep(retryMs);
    }
  }

  /**
   * Decides one bucket entry. The event (the decision-log record) is emitted before the store
   * changes: if it cannot be recorded, onEvent throws and the pin is not put in force, so no
   * approval is ever enforced without its record. Withdrawals are applied whatever happens (they
   * only hide tools).
   */
  private async apply(e: KvWatchEntry): Promise<void> {
    const where = parseToolKey(e.key);
    if (!where) return;
    const { store } = this.opts;
    const event = (x: Omit<PinEvent, 'server' | 'tool'>): void => this.opts.onEvent?.({ server: where.server, tool: where.tool, ...x });
    if (e.operation !== 'PUT') {
      if (store.pin(where.server, where.tool)) {
        store.removePin(where.server, where.tool);
        event({ action: 'removed', sha256: null, approver: null, kid: null, note: 'pin deleted from the bucket without a signed revocation' });
      }
      return;
    }
    let raw: unknown;
    try {
      raw = e.json();
    } catch {
      raw = null;
    }
    const v = await verifyEntry(raw, where.server, where.tool, this.opts.keys);
    if (!v.ok) {
      // A refused entry also withdraws what was pinned before: the bucket no longer vouches for it.
      this.stats.rejected++;
      store.removePin(where.server, where.tool);
      event({ action: 'rejected', sha256: null, approver: null, kid: null, note: v.error });
      return;
    }
    const s: PinStatement = v.statement;
    if (!v.pin) store.removePin(where.server, where.tool);
    event({ action: s.action, sha256: s.sha256, approver: s.approver, kid: v.kid, note: null });
    if (v.pin) store.setPin(v.pin);
    this.stats.applied++;
  }

  /** Other replicas' observations (see PinStore.adopt); runs beside the pin watch until stop. */
  private followSeen(kv: KV): void {
    this.seenWatch?.stop();
    void kv.watch().then(async (w) => {
      this.seenWatch = w;
      if (this.stopped) w.stop();
      for await (const e of w) {
        if (this.stopped) break;
        if (e.operation !== 'PUT') continue;
        const where = parseToolKey(e.key);
        let v: { instance?: unknown; definition?: unknown; seen_at?: unknown } | null = null;
        try { v = e.json(); } catch { v = null; }
        if (!where || !v || v.instance === this.opts.instance || typeof v.seen_at !== 'string') continue;
        const at = Date.parse(v.seen_at);
        if (Number.isFinite(at) && this.opts.store.adopt(where.server, where.tool, v.definition, at)) this.stats.adopted++;
      }
    }, (err: Error) => this.opts.onError?.(`cannot follow ${SEEN_BUCKET}: ${err.message}`));
  }

  /** After (re)connecting: what authz saw while the bucket was out of reach. */
  private republish(): void {
    for (const o of this.opts.store.observations()) this.publish(o.server, o.tool, o);
  }

  /** Publishes what a server now offers; fire and forget (an outage only delays `tools pending`). */
  publish(server: string, tool: string, o: Observed): void {
    const kv = this.seen;
    if (!kv) return;
    const value = JSON.stringify({ server, tool, sha256: o.sha256, definition: o.definition, findings: o.findings, seen_at: new Date(o.seenAt).toISOString(), instance: this.opts.instance });
    kv.put(toolKey(server, tool), value).then(() => { this.stats.published++; }, (err: Error) => this.opts.onError?.(`cannot publish ${server}/${tool}: ${err.message}`));
  }
}
