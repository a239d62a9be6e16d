import type { EventEmitter } from 'node:events';
import { contentDigest, withRevision } from '../../bundle/manifest.js';
import { readBundle } from '../../bundle/archive.js';
import { buildPolicyBundle } from '../build.js';
import { loadPolicy, type LoadOptions } from '../engine.js';
import type { PolicyHolder } from '../holder.js';
import { BundleActivator, type ActivateOutcome, type ActivatorEvents } from './activate.js';
import { DirWatcher, fingerprintDir } from './dirwatch.js';
import type { BundleSource, BundleSourceStatus, PolicyLoader } from './types.js';

export interface DirBundleSourceOptions {
  holder: PolicyHolder;
  dir: string;
  entrypoints?: string[];
  /** Rebuild when the directory changes. */
  watch?: boolean;
  debounceMs?: number;
  pollMs?: number;
  /** Options for loadPolicy (e.g. `entrypoint: 'envoy'`); the revision comes from the bundle. */
  loadOptions?: Omit<LoadOptions, 'revision'>;
  /** Replaces loadPolicy altogether. */
  load?: PolicyLoader;
}

/**
 * Local mode: builds the directory with `opa build -t wasm` and loads it, without NATS or
 * signatures. A build that fails `opa check` is a rejection like any bad bundle: the last good
 * policy keeps serving (or, at startup, none does and Check denies).
 *
 * The revision is `local-` plus the first 12 hex digits of the bundle's content digest, so the
 * same sources always give the same revision in decision records.
 */
export class DirBundleSource implements BundleSource {
  readonly kind = 'dir' as const;
  private readonly activator: BundleActivator;
  private watcher: DirWatcher | null = null;
  private sourceError: string | null = null;

  constructor(private readonly opts: DirBundleSourceOptions) {
    this.activator = new BundleActivator({ holder: opts.holder, load: opts.load ?? ((files, o) => loadPolicy(files, { ...opts.loadOptions, ...o })), verify: null });
  }

  get events(): EventEmitter<ActivatorEvents> {
    return this.activator;
  }

  /** Builds and loads once (awaited), then watches when asked to. */
  async start(): Promise<void> {
    const baseline = await fingerprintDir(this.opts.dir).catch(() => null);
    await this.reload();
    if (this.opts.watch) {
      this.watcher = new DirWatcher(this.opts.dir, async () => { await this.reload(); }, {
        debounceMs: this.opts.debounceMs ?? 300,
        pollMs: this.opts.pollMs ?? 5000,
      }, (e) => { this.sourceError = `${this.opts.dir}: ${e.message}`; });
      this.watcher.start(baseline);
    }
  }

  async stop(): Promise<void> {
    this.watcher?.stop();
    this.watcher = null;
  }

  status(): BundleSourceStatus {
    return this.activator.fillStatus('dir', this.sourceError);
  }

  /** Builds and activates now. */
  async reload(): Promise<ActivateOutcome> {
    const origin = `directory ${this.opts.dir}`;
    let bundle: Buffer;
    try {
      bundle = await buildPolicyBundle(this.opts.dir, this.opts.entrypoints ? { entrypoints: this.opts.entrypoints } : {});
      this.sourceError = null;
    } catch (e) {
      return this.activator.reject(`policy build of ${origin} failed, keeping revision ${this.activator.revision ?? '(none)'}: ${(e as Error).message}`, null, origin);
    }
    let files;
    try {
      files = await readBundle(bundle);
    } catch (e) {
      return this.activator.reject(`${origin}: opa build produced an unreadable bundle: ${(e as Error).message}`, null, origin);
    }
    const revision = `local-${contentDigest(files).slice(0, 12)}`;
    if (revision === this.activator.revision) return { ok: true, revision };
    return this.activator.activate(withRevision(files, revision), { origin });
  }
}
