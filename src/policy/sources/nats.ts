import { createHash } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import type { NatsConnection, QueuedIterator } from '@nats-io/transport-node';
import { Kvm, type KV, type KvEntry, type KvWatchEntry } from '@nats-io/kv';
import type { VerificationKey } from '../../bundle/keys.js';
import {
  DEFAULT_KV_BUCKET, DEFAULT_OBJECT_BUCKET, DEFAULT_POINTER_KEY, parseObjectName, parsePointer, type BundlePointer,
} from '../../bundle/pointer.js';
import { parseRevision } from '../../bundle/revision.js';
import { RevisionFloor } from '../../bundle/revision-floor.js';
import type { NatsLink } from '../../nats/connect.js';
import { loadPolicy, type LoadOptions } from '../engine.js';
import type { BundleFiles } from '../../bundle/archive.js';
import type { PolicyHolder } from '../holder.js';
import { BundleActivator, type ActivatorEvents } from './activate.js';
import { BundleObjectReader } from './object-reader.js';
import type { BundleSource, BundleSourceStatus, PolicyLoader } from './types.js';

export interface NatsBundleSourceOptions {
  holder: PolicyHolder;
  /** The process's NATS connection (owned by the runtime). */
  nats: NatsLink;
  /**
   * Where the highest revision accepted is kept, so a restart never accepts an older bundle
   * (anti-rollback across restarts). Unset: memory only (tests).
   */
  stateFile?: string;
  /** Public keys bundles may be signed with. Bundles over NATS must be signed. */
  keys: readonly VerificationKey[];
  scope?: string;
  kvBucket?: string;
  objectBucket?: string;
  pointerKey?: string;
  /** Re-read the pointer this often as a safety net behind the KV watch. */
  pollMs?: number;
  /**
   * A stored bundle newer than the pointer is taken over it only once it is this old (default
   * 5000 ms): a younger one is a publish under way whose pointer is about to move.
   */
  settleMs?: number;
  /** Wait between attempts while NATS or the buckets are not there yet. */
  retryMs?: number;
  /** Options for loadPolicy (e.g. `entrypoint: 'envoy'`); the revision comes from the bundle. */
  loadOptions?: Omit<LoadOptions, 'revision'>;
  /** Replaces loadPolicy altogether. */
  load?: PolicyLoader;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

/**
 * Authz side of the control plane: follows the KV pointer, fetches each bundle from the object
 * store, verifies it and swaps it in. It never blocks Check: until a first bundle is loaded the
 * holder is empty (Check denies: fail closed), and while NATS is away the last good policy serves.
 *
 * Revision order comes from the signed manifest, not the pointer: a bundle whose manifest revision
 * is not newer than the one in force, or that disagrees with its pointer, is rejected, so
 * replaying an old signed bundle cannot roll policy back.
 */
export class NatsBundleSource implements BundleSource {
  readonly kind = 'nats' as const;
  private readonly activator: BundleActivator;
  private readonly kvBucket: string;
  private readonly objectBucket: string;
  private readonly pointerKey: string;
  private nc: NatsConnection | null = null;
  private kv: KV | null = null;
  private store: BundleObjectReader | null = null;
  private stopped = true;
  private loop: Promise<void> | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private stopStatus: (() => void) | null = null;
  private watchIter: QueuedIterator<KvWatchEntry> | null = null;
  private chain: Promise<void> = Promise.resolve();
  private current: { revision: number; sha256: string } | null = null;
  /** KV sequence of the last pointer entry decided on. */
  private lastSeq = 0;
  private sourceError: string | null = 'not connected yet';
  private firstLoad: { promise: Promise<string>; resolve: (rev: string) => void };
  private readonly floor: RevisionFloor | null;
  /** Pointers refused because they named an older revision than one already accepted. */
  private rollbacks = 0;

  constructor(private readonly opts: NatsBundleSourceOptions) {
    this.kvBucket = opts.kvBucket ?? DEFAULT_KV_BUCKET;
    this.objectBucket = opts.objectBucket ?? DEFAULT_OBJECT_BUCKET;
    this.pointerKey = opts.pointerKey ?? DEFAULT_POINTER_KEY;
    this.activator = new BundleActivator({
      holder: opts.holder,
      load: opts.load ?? ((files, o) => loadPolicy(files, { ...opts.loadOptions, ...o })),
      verify: { keys: opts.keys, ...(opts.scope !== undefined ? { scope: opts.scope } : {}) },
    });
    let resolve: (rev: string) => void = () => undefined;
    const promise = new Promise<string>((r) => { resolve = r; });
    this.firstLoad = { promise, resolve };
    // A corrupt floor file is an error at start, never a silent reset to "accept anything".
    this.floor = opts.stateFile ? RevisionFloor.open(opts.stateFile) : null;
  }

  /** Lowest revision this instance may still accept: one above what it accepted before. */
  /**
   * Whether revision n may not be loaded: not newer than the one in force, or older than the one
   * accepted before a restart. That one itself may be loaded again after a restart: the publisher
   * never gives two bundles one number, and the signature says the control plane made it.
   */
  private refuses(n: number): boolean {
    return (this.current !== null && n <= this.current.revision) || n < (this.floor?.get(this.pointerKey) ?? 0);
  }

  private get accepted(): number {
    return Math.max(this.current?.revision ?? 0, this.floor?.get(this.pointerKey) ?? 0);
  }

  /** `swapped` and `rejected` events, for logs and metrics. */
  get events(): EventEmitter<ActivatorEvents> {
    return this.activator;
  }

  /** Returns at once; connecting, loading and watching continue in the background. */
  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    this.loop = this.run();
    this.pollTimer = setInterval(() => { void this.reconcile(); }, this.opts.pollMs ?? 30000);
    this.pollTimer.unref();
  }

  /** Resolves with the revision once a first bundle is in force; rejects after timeoutMs. */
  whenLoaded(timeoutMs = 30000): Promise<string> {
    if (this.activator.revision !== null) return Promise.resolve(this.activator.revision);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no policy bundle loaded from NATS after ${timeoutMs} ms: ${this.sourceError ?? this.activator.lastError?.message ?? 'nothing published yet'}`)), timeoutMs);
    });
    return Promise.race([this.firstLoad.promise, timeout]).finally(() => clearTimeout(timer));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = null;
    this.stopStatus?.();
    // Ending the watch (and our own connection) lets the loop return.
    this.watchIter?.stop();
    await this.loop;
    await this.chain;
    this.nc = this.kv = this.store = null;
  }

  status(): BundleSourceStatus {
    return { ...this.activator.fillStatus('nats', this.sourceError), rollbacks: this.rollbacks };
  }

  private async run(): Promise<void> {
    const retryMs = this.opts.retryMs ?? 1000;
    while (!this.stopped) {
      try {
        if (!this.nc || this.nc.isClosed()) {
          this.nc = await this.opts.nats.ready(Math.max(retryMs, 2000));
          this.followStatus(this.nc);
        }
        // Open (not create): authz has no business creating the control plane's buckets.
        const kv = await new Kvm(this.nc).open(this.kvBucket);
        await kv.status();
        // Listing and fetching use stream info and message gets, never a consumer (object-reader.ts).
        this.store = await BundleObjectReader.open(this.nc, this.objectBucket);
        this.kv = kv;
        this.sourceError = null;
        await this.reconcile();
        const watch = await kv.watch({ key: this.pointerKey });
        this.watchIter = watch;
        if (this.stopped) watch.stop();
        for await (const entry of watch) {
          if (this.stopped) break;
          void this.serial(() => this.consider(entry));
        }
      } catch (e) {
        if (this.stopped) break;
        this.sourceError = `NATS ${this.kvBucket}/${this.pointerKey}: ${(e as Error).message}`;
      }
      if (!this.stopped) await sleep(retryMs);
    }
  }

  /** After a reconnect the watch resumes by itself; re-reading the pointer covers any gap. */
  private followStatus(nc: NatsConnection): void {
    this.stopStatus?.();
    const iter = nc.status();
    // The client's status iterator can be stopped, though its declared type does not say so.
    this.stopStatus = 'stop' in iter && typeof iter.stop === 'function' ? () => { (iter.stop as () => void).call(iter); } : null;
    void (async () => {
      for await (const s of iter) {
        if (s.type === 'disconnect') this.sourceError = `disconnected from NATS ${s.server}; serving revision ${this.activator.revision ?? '(none)'}`;
        if (s.type === 'reconnect') {
          this.sourceError = null;
          void this.reconcile();
        }
      }
    })();
  }

  private reconcile(): Promise<void> {
    return this.serial(async () => {
      const kv = this.kv;
      if (!kv || this.stopped) return;
      let readFailed = false;
      const e = await kv.get(this.pointerKey).catch((err: Error) => {
        readFailed = true;
        this.sourceError = `cannot read pointer ${this.kvBucket}/${this.pointerKey}: ${err.message}`;
        return undefined;
      });
      // A read that failed once (a timeout while the cluster elected a new leader after a node
      // died) stayed in the status for good although the pointer was readable again.
      if (!readFailed && this.sourceError?.startsWith(`cannot read pointer ${this.kvBucket}/`)) this.sourceError = null;
      if (!e) return;
      await this.consider(e);
      // The store check again: a bundle still settling when the pointer was last looked at
      // (see settleMs) is taken now if the pointer has not caught up with it.
      let above = 0;
      try {
        if (e.operation === 'PUT') above = parsePointer(e.value).revision;
      } catch {
        above = 0;
      }
      await this.loadNewestStored(`nats ${this.kvBucket}/${this.pointerKey}`, above);
    });
  }

  /** Runs pointer handling one at a time; never rejects (a failure is a source error to retry). */
  private serial(fn: () => Promise<void>): Promise<void> {
    const next = this.chain.then(fn).catch((e: Error) => {
      this.sourceError = `NATS ${this.kvBucket}/${this.pointerKey}: ${e.message}`;
    });
    this.chain = next;
    return next;
  }

  /**
   * An entry at or below the last sequence seen that names a newer bundle than the one in force:
   * the bucket was deleted and made again (a NATS cluster rebuilt without its data), so its
   * sequence numbers started over. Without this a running authz ignored every pointer until the
   * new sequence passed the old one. The entry then takes the normal path, whose revision floor
   * still refuses anything older than what was accepted.
   */
  private afterReset(entry: KvEntry): boolean {
    if (entry.operation !== 'PUT') return false;
    try {
      return parsePointer(entry.value).revision > (this.current?.revision ?? 0);
    } catch {
      return false;
    }
  }

  private async consider(entry: KvEntry): Promise<void> {
    // The watch, the poll and reconnects can all deliver the same or an older KV entry; only a
    // newer entry is news. An entry is marked seen once it is decided (loaded or refused).
    if (this.stopped || (entry.revision <= this.lastSeq && !this.afterReset(entry))) return;
    if (entry.operation !== 'PUT') { this.lastSeq = entry.revision; return; }
    const origin = `nats ${this.kvBucket}/${this.pointerKey}`;
    let pointer: BundlePointer;
    try {
      pointer = parsePointer(entry.value);
    } catch (e) {
      this.lastSeq = entry.revision;
      this.activator.reject(`${origin}: ${(e as Error).message}`, null, origin);
      await this.loadNewestStored(origin, 0);
      return;
    }
    const rev = String(pointer.revision);
    if (this.current !== null && pointer.revision === this.current.revision && pointer.sha256 === this.current.sha256) {
      this.lastSeq = entry.revision; // the same bundle pointed at again
      return;
    }
    // The pointer is a hint: a newer signed bundle in the store wins, so a pointer moved back
    // (or to a made-up revision) cannot make even a fresh instance load an old policy.
    await this.loadNewestStored(origin, pointer.revision);
    if (this.refuses(pointer.revision)) {
      this.lastSeq = entry.revision;
      if (pointer.revision < this.accepted) this.rollbacks++;
      const where = this.current !== null && this.current.revision === this.accepted ? 'in force' : `accepted before this restart (${this.floor?.file})`;
      this.activator.reject(`bundle revision ${rev} from ${origin} rejected: not newer than revision ${this.accepted} ${where}; the pointer was moved back or replayed`, rev, origin);
      return;
    }
    const store = this.store;
    if (!store) return;
    let bytes: Uint8Array | null;
    try {
      bytes = await store.get(pointer.object);
    } catch (e) {
      // Transport trouble, not a bad bundle: not marked seen, so the next reconcile retries.
      this.sourceError = `cannot fetch ${pointer.object}: ${(e as Error).message}`;
      return;
    }
    if (bytes === null) {
      const now = await this.kv?.get(this.pointerKey).catch(() => null);
      if (now && now.revision !== entry.revision) return; // superseded and pruned meanwhile
      this.lastSeq = entry.revision;
      this.activator.reject(`bundle revision ${rev} from ${origin} rejected: object ${pointer.object} is missing from ${this.objectBucket}`, rev, origin);
      return;
    }
    this.lastSeq = entry.revision;
    const buf = Buffer.from(bytes);
    const sha = createHash('sha256').update(buf).digest('hex');
    if (sha !== pointer.sha256) {
      this.activator.reject(`bundle revision ${rev} from ${origin} rejected: object ${pointer.object} has SHA-256 ${sha}, pointer says ${pointer.sha256}`, rev, origin);
      return;
    }
    await this.activateBytes(buf, pointer.revision, pointer.sha256, origin);
  }

  /** Verifies and swaps in one bundle whose expected revision is known; true when it is in force. */
  private async activateBytes(buf: Buffer, revision: number, sha256: string, origin: string): Promise<boolean> {
    const floor = this.accepted;
    const outcome = await this.activator.activate(buf, {
      origin,
      check: (_files: BundleFiles, manifestRev: string | null) => {
        const n = parseRevision(manifestRev);
        if (n === null) throw new Error(`signed manifest revision ${JSON.stringify(manifestRev)} is not a control-plane revision number`);
        if (n !== revision) throw new Error(`signed manifest says revision ${n} but the pointer says ${revision}`);
        if (this.refuses(n)) throw new Error(`not newer than revision ${floor} already accepted`);
      },
    });
    if (!outcome.ok) return false;
    this.current = { revision, sha256 };
    // Persisted before anything else relies on it: a crash now must not allow this revision's predecessors back.
    try {
      this.floor?.raise(this.pointerKey, revision);
    } catch (e) {
      this.sourceError = `cannot persist accepted revision ${revision} in ${this.floor?.file}: ${(e as Error).message}`;
    }
    this.firstLoad.resolve(outcome.revision);
    return true;
  }

  /**
   * Loads the newest signed bundle in the object store when it is newer than what is in force.
   * A fresh instance whose pointer was moved back (or made up) still ends on the newest policy,
   * because the store, not the pointer, decides: each candidate must verify with our keys and its
   * signed revision must match its name. Only settled objects count (see settleMs).
   */
  private async loadNewestStored(origin: string, above: number): Promise<void> {
    const store = this.store;
    if (!store || this.stopped) return;
    let names: { name: string; revision: number }[];
    try {
      names = [];
      // Names come from the stream's subjects; only a name newer than `above` costs a meta read.
      for (const name of await store.names()) {
        const parsed = parseObjectName(this.pointerKey, name);
        if (!parsed || parsed.revision <= above || this.refuses(parsed.revision)) continue;
        const info = await store.meta(name);
        const settled = info !== null && Date.now() - Date.parse(info.mtime) >= (this.opts.settleMs ?? 5000);
        if (info && !info.deleted && settled) names.push({ name, revision: parsed.revision });
      }
    } catch (e) {
      this.sourceError = `cannot list ${this.objectBucket}: ${(e as Error).message}`;
      return;
    }
    names.sort((a, b) => b.revision - a.revision);
    for (const c of names) {
      const bytes = await store.get(c.name).catch(() => null);
      if (!bytes) continue;
      const buf = Buffer.from(bytes);
      const sha = createHash('sha256').update(buf).digest('hex');
      if (!sha.startsWith(c.name.slice(-16))) continue;
      const from = `${origin} (newest in ${this.objectBucket}: ${c.name}; the pointer says revision ${above}, behind it)`;
      if (await this.activateBytes(buf, c.revision, sha, from)) return;
    }
  }
}
