import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { KvWatchInclude, type KvWatchEntry } from '@nats-io/kv';
import type { QueuedIterator } from '@nats-io/transport-node';
import { RevisionFloor } from '../bundle/revision-floor.js';
import type { NatsLink } from '../nats/connect.js';
import { readBundle, type BundleFiles } from '../bundle/archive.js';
import { readPolicySources } from './revision-archive.js';
import { buildPolicyBundle } from '../policy/build.js';
import { DirWatcher, fingerprintDir } from '../policy/sources/dirwatch.js';
import type { SigningKey } from '../bundle/keys.js';
import { contentDigest } from '../bundle/manifest.js';
import { parsePointer, type BundlePointer } from '../bundle/pointer.js';
import { BundlePublisher, type PublisherOptions } from './publisher.js';

export interface PolicyControlPlaneOptions {
  policiesDir: string;
  signingKey: SigningKey;
  /** The process's NATS connection (the caller owns and closes it). */
  nats: NatsLink;
  /** Where the highest revision published is kept across restarts; unset: memory only. */
  stateFile?: string;
  /** Give up waiting for the first NATS connection after this long (default 60 s). */
  connectTimeoutMs?: number;
  /** Entrypoints for `opa build`; the policy contract's defaults when unset. */
  entrypoints?: string[];
  debounceMs?: number;
  pollMs?: number;
  /** Delay before retrying a publish that failed (NATS unreachable); doubles up to 30 s. */
  retryMs?: number;
  publisher?: PublisherOptions;
  /** OPA signature scope claim, when verifiers are configured with one. */
  scope?: string;
}

export interface BuiltEvent { contentSha256: string; files: number; durationMs: number }
export interface UnchangedEvent { contentSha256: string; revision: number }
/** sources: the policy files as read right after the build (OPA rewrites the modules in a bundle). */
export interface PublishedEvent { pointer: BundlePointer; sources: BundleFiles }
export interface BuildFailedEvent { message: string }
export interface PublishFailedEvent { message: string; retryInMs: number }
/** The pointer was found naming something this control plane did not publish last, and was put back. */
export interface PointerCorrectedEvent { found: string; restored: number | null; corrected: boolean }

export interface ControlPlaneEvents {
  built: [BuiltEvent];
  /** The build equals what is already published: no new revision. */
  unchanged: [UnchangedEvent];
  published: [PublishedEvent];
  /** `opa check` / `opa build` refused the sources; nothing was published. */
  'build-failed': [BuildFailedEvent];
  'publish-failed': [PublishFailedEvent];
  /** Someone moved the pointer backwards or to a revision this key never published: an alert. */
  'pointer-corrected': [PointerCorrectedEvent];
}

export interface ControlPlaneStatus {
  revision: number | null;
  lastBuildError: string | null;
  lastPublishError: string | null;
  published: number;
  buildFailures: number;
  /** Times the pointer was found tampered with (moved back, made up) and put back. */
  pointerCorrections: number;
}

interface Pending { files: BundleFiles; content: string; sources: BundleFiles }

/**
 * Builds the policy directory whenever it changes, signs and publishes each good build as the
 * next revision. A failed build is reported and nothing is published; a failed publish is
 * retried. Runs alongside other servers (xDS) in one process: start() and stop() only touch
 * what this class owns.
 */
export class PolicyControlPlane extends EventEmitter<ControlPlaneEvents> {
  private publisher: BundlePublisher | null = null;
  private watcher: DirWatcher | null = null;
  private pending: Pending | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryDelay: number;
  private chain: Promise<void> = Promise.resolve();
  private stopped = true;
  private readonly st: ControlPlaneStatus = { revision: null, lastBuildError: null, lastPublishError: null, published: 0, buildFailures: 0, pointerCorrections: 0 };
  private readonly floor: RevisionFloor | null;
  /** The newest pointer this key verifiably published: what the pointer must say. */
  private good: BundlePointer | null = null;
  private watch: QueuedIterator<KvWatchEntry> | null = null;
  private guardLoop: Promise<void> | null = null;

  constructor(private readonly opts: PolicyControlPlaneOptions) {
    super();
    this.retryDelay = opts.retryMs ?? 2000;
    this.floor = opts.stateFile ? RevisionFloor.open(opts.stateFile) : null;
  }

  private get pointerKey(): string {
    return this.publisher?.pointerKey ?? '';
  }

  private signOpts(): { scope?: string } {
    return this.opts.scope !== undefined ? { scope: this.opts.scope } : {};
  }

  /** Connects, builds and publishes the directory once (awaited), then watches it. */
  async start(): Promise<void> {
    this.stopped = false;
    const nc = await this.opts.nats.ready(this.opts.connectTimeoutMs ?? 60_000);
    this.publisher = await BundlePublisher.open(nc, this.opts.publisher);
    await this.serial(() => this.adoptTrusted());
    this.st.revision = this.good?.revision ?? null;
    await this.startGuard();
    const baseline = await fingerprintDir(this.opts.policiesDir);
    await this.serial(() => this.cycle());
    this.watcher = new DirWatcher(this.opts.policiesDir, () => this.serial(() => this.cycle()), {
      debounceMs: this.opts.debounceMs ?? 300,
      pollMs: this.opts.pollMs ?? 5000,
    });
    this.watcher.start(baseline);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.watcher?.stop();
    this.watcher = null;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.watch?.stop();
    await this.guardLoop;
    await this.chain;
    this.publisher = null;
  }

  status(): ControlPlaneStatus {
    return { ...this.st };
  }

  /** Builds and publishes now, whatever the watcher thinks; resolves when done. */
  rebuild(): Promise<void> {
    return this.serial(() => this.cycle());
  }

  private serial(fn: () => Promise<void>): Promise<void> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async cycle(): Promise<void> {
    if (this.stopped) return;
    const t0 = performance.now();
    let files: BundleFiles;
    let content: string;
    let sources: BundleFiles;
    try {
      const opts = this.opts.entrypoints ? { entrypoints: this.opts.entrypoints } : {};
      files = await readBundle(await buildPolicyBundle(this.opts.policiesDir, opts));
      // After the build, which reports a missing or unreadable directory in its own words.
      sources = await readPolicySources(this.opts.policiesDir);
      content = contentDigest(files);
    } catch (e) {
      // A broken edit never replaces what is published; the previous revision stays in force.
      this.pending = null;
      this.st.buildFailures++;
      this.st.lastBuildError = (e as Error).message;
      this.emit('build-failed', { message: (e as Error).message });
      return;
    }
    this.st.lastBuildError = null;
    this.emit('built', { contentSha256: content, files: files.size, durationMs: performance.now() - t0 });
    this.pending = { files, content, sources };
    await this.flush();
  }

  /** Records a pointer as the one in force and raises the persisted floor to it. */
  private accept(pointer: BundlePointer): void {
    if (this.good && pointer.revision < this.good.revision) return;
    this.good = pointer;
    this.floor?.raise(this.pointerKey, pointer.revision);
  }

  /**
   * At start: the newest bundle this key verifiably published becomes the one in force. A pointer
   * that names anything else (older, made up, unverifiable) is corrected right away.
   */
  private async adoptTrusted(): Promise<void> {
    const publisher = this.publisher!;
    const key = this.opts.signingKey;
    const { pointer, seq, invalid } = await publisher.currentEntry();
    const newest = await publisher.newestTrusted(key, this.signOpts());
    const floor = this.floor?.get(this.pointerKey) ?? 0;
    if (pointer && (await publisher.distrust(pointer, key, this.signOpts())) === null && pointer.revision >= (newest?.revision ?? 0) && pointer.revision >= floor) {
      this.accept(pointer);
      return;
    }
    if (newest) this.accept(newest);
    if (pointer || invalid) await this.correct(seq, pointer, invalid);
  }

  /** Watches the pointer; any entry other than what this key published last is checked. */
  private async startGuard(): Promise<void> {
    const kv = this.publisher!.pointerKv;
    this.watch = await kv.watch({ key: this.pointerKey, include: KvWatchInclude.UpdatesOnly });
    const watch = this.watch;
    this.guardLoop = (async () => {
      for await (const e of watch) {
        if (this.stopped) break;
        if (e.operation !== 'PUT') {
          void this.serial(() => this.correct(e.revision, null, 'the pointer was deleted')).catch(() => undefined);
          continue;
        }
        void this.serial(() => this.check(e.revision, e.value)).catch(() => undefined);
      }
    })();
  }

  private async check(seq: number, value: Uint8Array): Promise<void> {
    if (this.stopped || !this.publisher) return;
    let pointer: BundlePointer;
    try {
      pointer = parsePointer(value);
    } catch (e) {
      return this.correct(seq, null, (e as Error).message);
    }
    const good = this.good;
    if (good && pointer.revision === good.revision && pointer.sha256 === good.sha256 && pointer.object === good.object) return;
    // Another control plane with the same key may have published a newer revision: that is fine.
    if ((!good || pointer.revision > good.revision) && (await this.publisher.distrust(pointer, this.opts.signingKey, this.signOpts())) === null) {
      this.accept(pointer);
      this.st.revision = pointer.revision;
      return;
    }
    return this.correct(seq, pointer, null);
  }

  /** Puts the trusted pointer back over entry `seq` and raises the alert. */
  private async correct(seq: number, found: BundlePointer | null, invalid: string | null): Promise<void> {
    const good = this.good;
    const what = invalid !== null ? `an invalid pointer (${invalid})`
      : found ? `revision ${found.revision} (${found.object})` : 'no pointer';
    const why = found && good && found.revision < good.revision ? `moved backwards from revision ${good.revision}`
      : found && good && found.revision === good.revision ? 'a different bundle under the published revision'
        : 'not a bundle this control plane published';
    this.st.pointerCorrections++;
    const corrected = good !== null && this.publisher !== null && (await this.publisher.restore(good, seq));
    this.emit('pointer-corrected', { found: `${what}: ${invalid !== null ? 'unreadable' : why}`, restored: good?.revision ?? null, corrected });
  }

  private async flush(): Promise<void> {
    const p = this.pending;
    const publisher = this.publisher;
    if (!p || !publisher || this.stopped) return;
    try {
      // Compared with what this key verifiably published, not with whatever the pointer claims.
      const cur = this.good;
      if (cur && cur.content_sha256 === p.content && cur.kid === this.opts.signingKey.kid) {
        this.pending = null;
        this.st.revision = cur.revision;
        this.emit('unchanged', { contentSha256: p.content, revision: cur.revision });
        return;
      }
      // Another control plane with this key (another region's) may have published these sources
      // while this one built them: then there is nothing to publish.
      const { pointer, published } = await publisher.publishOnce(p.files, this.opts.signingKey, this.signOpts(), this.floor?.get(this.pointerKey) ?? 0);
      this.accept(pointer);
      if (this.pending === p) this.pending = null;
      if (!published) {
        this.st.revision = pointer.revision;
        this.st.lastPublishError = null;
        this.retryDelay = this.opts.retryMs ?? 2000;
        this.emit('unchanged', { contentSha256: p.content, revision: pointer.revision });
        return;
      }
      this.st.revision = pointer.revision;
      this.st.published++;
      this.st.lastPublishError = null;
      this.retryDelay = this.opts.retryMs ?? 2000;
      this.emit('published', { pointer, sources: p.sources });
    } catch (e) {
      const retryInMs = this.retryDelay;
      this.st.lastPublishError = (e as Error).message;
      this.emit('publish-failed', { message: (e as Error).message, retryInMs });
      this.retryDelay = Math.min(this.retryDelay * 2, 30000);
      if (this.retryTimer) clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => { this.retryTimer = null; this.serial(() => this.flush()).catch(() => undefined); }, retryInMs);
      this.retryTimer.unref();
    }
  }
}
