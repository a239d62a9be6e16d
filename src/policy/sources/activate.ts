import { EventEmitter } from 'node:events';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { verifyBundle, type VerifyOptions } from '../../bundle/verify.js';
import { manifestRevision } from '../../bundle/manifest.js';
import { SIGNATURES_PATH } from '../../bundle/sign.js';
import { readBundle, type BundleFiles } from '../../bundle/archive.js';
import type { PolicyHolder } from '../holder.js';
import type { BundleSourceStatus, PolicyLoader, RejectionRecord } from './types.js';

export interface ActivatorOptions {
  holder: PolicyHolder;
  load: PolicyLoader;
  /** Signature check; null accepts unsigned bundles (local directory, unsigned HTTP server). */
  verify: VerifyOptions | null;
}

export interface ActivateRequest {
  /** Revision to use when the manifest has none. */
  fallbackRevision?: string;
  /** Extra acceptance rule on the verified bundle (e.g. revision ordering); throw to refuse. */
  check?: (files: BundleFiles, revision: string | null) => void;
  /** Prefix for messages, naming where the bundle came from. */
  origin: string;
}

export type ActivateOutcome =
  | { ok: true; revision: string }
  | { ok: false; revision: string | null; message: string };

export interface ActivatorEvents {
  swapped: [{ revision: string; origin: string }];
  rejected: [{ revision: string | null; message: string; origin: string }];
}

function safeRevision(files: BundleFiles): string | null {
  try {
    return manifestRevision(files);
  } catch {
    return null;
  }
}

/**
 * The one path from bundle bytes to the policy in force, shared by every source: read, verify,
 * load the WASM (off the request path: Checks keep using the old evaluator meanwhile), then one
 * atomic swap. Any failure is a rejection recorded on the holder; the last good policy keeps
 * serving.
 */
export class BundleActivator extends EventEmitter<ActivatorEvents> {
  private chain: Promise<unknown> = Promise.resolve();
  revision: string | null = null;
  loadedAt: string | null = null;
  swaps = 0;
  rejections = 0;
  lastError: RejectionRecord | null = null;

  constructor(private readonly opts: ActivatorOptions) {
    super();
  }

  /** Activations run one at a time, in call order. */
  activate(bundle: Buffer | BundleFiles, req: ActivateRequest): Promise<ActivateOutcome> {
    const run = this.chain.then(() => this.activateNow(bundle, req));
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Records a rejection found before activation (bad pointer, digest mismatch on transfer). */
  reject(message: string, revision: string | null, origin: string): ActivateOutcome {
    this.rejections++;
    this.lastError = { at: new Date().toISOString(), message, revision };
    this.opts.holder.reject(message, revision);
    this.emit('rejected', { revision, message, origin });
    return { ok: false, revision, message };
  }

  fillStatus(kind: BundleSourceStatus['kind'], sourceError: string | null): BundleSourceStatus {
    return {
      kind, revision: this.revision, loadedAt: this.loadedAt, swaps: this.swaps,
      rejections: this.rejections, lastError: this.lastError, sourceError,
    };
  }

  private async activateNow(bundle: Buffer | BundleFiles, req: ActivateRequest): Promise<ActivateOutcome> {
    let revision: string | null = req.fallbackRevision ?? null;
    try {
      let files = Buffer.isBuffer(bundle) ? await readBundle(bundle) : bundle;
      // Unverified, only to name the bundle in a rejection message.
      revision = safeRevision(files) ?? revision;
      await yieldToLoop();
      if (this.opts.verify) {
        files = (await verifyBundle(files, this.opts.verify)).files;
      } else if (files.has(SIGNATURES_PATH)) {
        files = new Map([...files].filter(([p]) => p !== SIGNATURES_PATH));
      }
      revision = manifestRevision(files) ?? req.fallbackRevision ?? null;
      req.check?.(files, revision);
      // Each step gets a task of its own (the loader yields inside too): Checks keep being
      // answered by the previous policy until the new one is loaded in full and swapped in.
      await yieldToLoop();
      const evaluator = await this.opts.load(files, revision !== null ? { revision } : {});
      this.opts.holder.swap(evaluator);
      this.revision = evaluator.revision;
      this.loadedAt = new Date().toISOString();
      this.swaps++;
      this.emit('swapped', { revision: evaluator.revision, origin: req.origin });
      return { ok: true, revision: evaluator.revision };
    } catch (e) {
      const label = revision !== null ? `bundle revision ${revision}` : 'bundle';
      return this.reject(`${label} from ${req.origin} rejected: ${(e as Error).message}`, revision, req.origin);
    }
  }
}
