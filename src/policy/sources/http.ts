import { createHash } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import type { VerificationKey } from '../../bundle/keys.js';
import { MAX_BUNDLE_BYTES } from '../../bundle/archive.js';
import { loadPolicy, type LoadOptions } from '../engine.js';
import type { PolicyHolder } from '../holder.js';
import { BundleActivator, type ActivatorEvents } from './activate.js';
import type { BundleSource, BundleSourceStatus, PolicyLoader } from './types.js';

export interface HttpBundleSourceOptions {
  holder: PolicyHolder;
  /** Full URL of the bundle, e.g. https://bundles.example.com/bundles/authz.tar.gz. */
  url: string;
  /** Poll interval (OPA's default polling is every 60–120 s). */
  pollMs?: number;
  timeoutMs?: number;
  /** Extra request headers, e.g. Authorization for a private bundle server. */
  headers?: Record<string, string>;
  /** When given, bundles must carry a valid signature by one of these keys. */
  keys?: readonly VerificationKey[];
  scope?: string;
  /** Options for loadPolicy (e.g. `entrypoint: 'envoy'`); the revision comes from the bundle. */
  loadOptions?: Omit<LoadOptions, 'revision'>;
  /** Replaces loadPolicy altogether. */
  load?: PolicyLoader;
}

/** Reads a response body, refusing to buffer more than `limit` bytes. */
async function readLimited(res: Response, limit: number): Promise<Buffer> {
  if (!res.body) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let total = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > limit) {
      await reader.cancel();
      throw new Error(`bundle is over the ${limit} byte limit`);
    }
    chunks.push(Buffer.from(value));
  }
  return Buffer.concat(chunks);
}

export type PollResult =
  | { kind: 'not-modified' }
  | { kind: 'unchanged' }
  | { kind: 'swapped'; revision: string }
  | { kind: 'rejected'; message: string }
  | { kind: 'error'; message: string };

/**
 * Polls a standard OPA bundle server. The ETag of the last response is sent back in
 * If-None-Match so an unchanged bundle costs a 304; a 200 whose bytes equal what was last
 * processed is not reloaded either. HTTP gives no ordering guarantee, so any bundle that passes
 * verification and loads replaces the current one.
 */
export class HttpBundleSource implements BundleSource {
  readonly kind = 'http' as const;
  private readonly activator: BundleActivator;
  private etag: string | null = null;
  private lastSha: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private polling: Promise<PollResult> | null = null;
  private stopped = true;
  private sourceError: string | null = null;
  /** Responses by kind, for metrics and tests. */
  readonly counts = { notModified: 0, downloaded: 0, errors: 0 };

  constructor(private readonly opts: HttpBundleSourceOptions) {
    this.activator = new BundleActivator({
      holder: opts.holder,
      load: opts.load ?? ((files, o) => loadPolicy(files, { ...opts.loadOptions, ...o })),
      verify: opts.keys ? { keys: opts.keys, ...(opts.scope !== undefined ? { scope: opts.scope } : {}) } : null,
    });
  }

  get events(): EventEmitter<ActivatorEvents> {
    return this.activator;
  }

  /** Polls once (awaited, so a reachable server gives a policy before start returns), then on a timer. */
  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    await this.poll();
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.polling;
  }

  status(): BundleSourceStatus {
    return this.activator.fillStatus('http', this.sourceError);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => { void this.poll().finally(() => this.schedule()); }, this.opts.pollMs ?? 60000);
    this.timer.unref();
  }

  /** One conditional GET and, on new bytes, one activation. Concurrent calls share the request. */
  poll(): Promise<PollResult> {
    if (!this.polling) this.polling = this.pollOnce().finally(() => { this.polling = null; });
    return this.polling;
  }

  private async pollOnce(): Promise<PollResult> {
    const headers: Record<string, string> = { accept: 'application/gzip, application/octet-stream', ...this.opts.headers };
    if (this.etag) headers['if-none-match'] = this.etag;
    let body: Buffer;
    let etag: string | null;
    try {
      const res = await fetch(this.opts.url, { headers, signal: AbortSignal.timeout(this.opts.timeoutMs ?? 30000) });
      if (res.status === 304) {
        await res.body?.cancel();
        this.counts.notModified++;
        this.sourceError = null;
        return { kind: 'not-modified' };
      }
      if (res.status !== 200) {
        await res.body?.cancel();
        throw new Error(`HTTP ${res.status} ${res.statusText}`);
      }
      const declared = Number(res.headers.get('content-length') ?? '0');
      if (declared > MAX_BUNDLE_BYTES) throw new Error(`bundle is ${declared} bytes, over the ${MAX_BUNDLE_BYTES} limit`);
      body = await readLimited(res, MAX_BUNDLE_BYTES);
      etag = res.headers.get('etag');
    } catch (e) {
      this.counts.errors++;
      this.sourceError = `GET ${this.opts.url}: ${(e as Error).message}`;
      return { kind: 'error', message: this.sourceError };
    }
    this.counts.downloaded++;
    this.sourceError = null;
    const sha = createHash('sha256').update(body).digest('hex');
    // Remember the ETag even for a refused bundle: re-downloading it every poll would only
    // refuse it again. A fixed bundle gets a new ETag.
    this.etag = etag;
    if (sha === this.lastSha) return { kind: 'unchanged' };
    this.lastSha = sha;
    const outcome = await this.activator.activate(body, {
      origin: this.opts.url,
      fallbackRevision: etag ? `etag:${etag.replace(/^W\//, '').replace(/"/g, '')}` : `sha256:${sha.slice(0, 12)}`,
    });
    return outcome.ok ? { kind: 'swapped', revision: outcome.revision } : { kind: 'rejected', message: outcome.message };
  }
}
