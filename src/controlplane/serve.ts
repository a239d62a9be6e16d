import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { readBundle, type BundleFiles } from '../policy/bundle.js';
import { buildPolicyBundle } from '../policy/build.js';
import { DirWatcher, fingerprintDir } from '../policy/sources/dirwatch.js';
import type { SigningKey } from './keys.js';
import { contentDigest } from './manifest.js';
import type { BundlePointer } from './pointer.js';
import { BundlePublisher, type PublisherOptions } from './publisher.js';

export interface PolicyControlPlaneOptions {
  policiesDir: string;
  signingKey: SigningKey;
  /** A connection to share, or servers to connect to (then start/stop own the connection). */
  nats: NatsConnection | { servers: string | string[] };
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
export interface PublishedEvent { pointer: BundlePointer }
export interface BuildFailedEvent { message: string }
export interface PublishFailedEvent { message: string; retryInMs: number }

export interface ControlPlaneEvents {
  built: [BuiltEvent];
  /** The build equals what is already published: no new revision. */
  unchanged: [UnchangedEvent];
  published: [PublishedEvent];
  /** `opa check` / `opa build` refused the sources; nothing was published. */
  'build-failed': [BuildFailedEvent];
  'publish-failed': [PublishFailedEvent];
}

export interface ControlPlaneStatus {
  revision: number | null;
  lastBuildError: string | null;
  lastPublishError: string | null;
  published: number;
  buildFailures: number;
}

interface Pending { files: BundleFiles; content: string }

function isConnection(n: PolicyControlPlaneOptions['nats']): n is NatsConnection {
  return typeof (n as NatsConnection).close === 'function';
}

/**
 * Builds the policy directory whenever it changes, signs and publishes each good build as the
 * next revision. A failed build is reported and nothing is published; a failed publish is
 * retried. Runs alongside other servers (xDS) in one process: start() and stop() only touch
 * what this class owns.
 */
export class PolicyControlPlane extends EventEmitter<ControlPlaneEvents> {
  private nc: NatsConnection | null = null;
  private ownsConnection = false;
  private publisher: BundlePublisher | null = null;
  private watcher: DirWatcher | null = null;
  private pending: Pending | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryDelay: number;
  private chain: Promise<void> = Promise.resolve();
  private stopped = true;
  private readonly st: ControlPlaneStatus = { revision: null, lastBuildError: null, lastPublishError: null, published: 0, buildFailures: 0 };

  constructor(private readonly opts: PolicyControlPlaneOptions) {
    super();
    this.retryDelay = opts.retryMs ?? 2000;
  }

  /** Connects, builds and publishes the directory once (awaited), then watches it. */
  async start(): Promise<void> {
    this.stopped = false;
    if (isConnection(this.opts.nats)) {
      this.nc = this.opts.nats;
    } else {
      this.nc = await connect({ servers: this.opts.nats.servers, name: 'tollgate-controlplane', maxReconnectAttempts: -1, waitOnFirstConnect: true });
      this.ownsConnection = true;
    }
    this.publisher = await BundlePublisher.open(this.nc, this.opts.publisher);
    this.st.revision = (await this.publisher.current())?.revision ?? null;
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
    await this.chain;
    if (this.ownsConnection && this.nc) await this.nc.close();
    this.nc = null;
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
    try {
      const opts = this.opts.entrypoints ? { entrypoints: this.opts.entrypoints } : {};
      files = await readBundle(await buildPolicyBundle(this.opts.policiesDir, opts));
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
    this.pending = { files, content };
    await this.flush();
  }

  private async flush(): Promise<void> {
    const p = this.pending;
    const publisher = this.publisher;
    if (!p || !publisher || this.stopped) return;
    try {
      const cur = await publisher.current();
      if (cur && cur.content_sha256 === p.content && cur.kid === this.opts.signingKey.kid) {
        this.pending = null;
        this.st.revision = cur.revision;
        this.emit('unchanged', { contentSha256: p.content, revision: cur.revision });
        return;
      }
      const pointer = await publisher.publish(p.files, this.opts.signingKey, this.opts.scope !== undefined ? { scope: this.opts.scope } : {});
      if (this.pending === p) this.pending = null;
      this.st.revision = pointer.revision;
      this.st.published++;
      this.st.lastPublishError = null;
      this.retryDelay = this.opts.retryMs ?? 2000;
      this.emit('published', { pointer });
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
