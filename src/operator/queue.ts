/**
 * A work queue keyed by object: a key queued several times while waiting is reconciled once, a
 * key is never reconciled by two workers at once, and a failed key comes back with exponential
 * backoff (capped) instead of spinning. Reconcilers read the object fresh, so only keys are queued.
 */

export interface QueueOptions {
  concurrency?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  onError?: (key: string, e: Error, retryInMs: number) => void;
}

export class WorkQueue {
  private readonly waiting = new Set<string>();
  private readonly order: string[] = [];
  private readonly active = new Set<string>();
  /** Queued again while being worked on: run once more when done. */
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private running = 0;
  private stopped = false;
  private idle: (() => void)[] = [];

  constructor(private readonly work: (key: string) => Promise<void>, private readonly opts: QueueOptions = {}) {}

  add(key: string): void {
    if (this.stopped) return;
    if (this.active.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.waiting.has(key)) return;
    this.waiting.add(key);
    this.order.push(key);
    this.pump();
  }

  /** Resolves when nothing is queued, running or waiting to retry (for tests and shutdown). */
  drained(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.order.length = 0;
    this.waiting.clear();
  }

  private isIdle(): boolean {
    return this.order.length === 0 && this.running === 0 && this.timers.size === 0;
  }

  private pump(): void {
    const limit = this.opts.concurrency ?? 2;
    while (!this.stopped && this.running < limit) {
      const i = this.order.findIndex((k) => !this.active.has(k));
      if (i < 0) break;
      const [key] = this.order.splice(i, 1) as [string];
      this.waiting.delete(key);
      this.active.add(key);
      this.running++;
      void this.run(key);
    }
    if (this.isIdle()) for (const r of this.idle.splice(0)) r();
  }

  private async run(key: string): Promise<void> {
    try {
      await this.work(key);
      this.failures.delete(key);
    } catch (e) {
      const n = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, n);
      const delay = Math.min((this.opts.baseDelayMs ?? 500) * 2 ** (n - 1), this.opts.maxDelayMs ?? 60_000);
      this.opts.onError?.(key, e as Error, delay);
      if (!this.stopped) {
        const t = setTimeout(() => { this.timers.delete(key); this.add(key); }, delay);
        t.unref();
        this.timers.set(key, t);
      }
    } finally {
      this.active.delete(key);
      this.running--;
      if (this.dirty.delete(key)) this.add(key);
      this.pump();
    }
  }
}
