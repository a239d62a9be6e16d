import { AuthError } from './types.js';

/**
 * Spaces out retries after the issuer failed, so an outage costs one fetch per interval rather than
 * one per request. While waiting, callers are refused at once with issuer_unavailable.
 */
export class Backoff {
  private failures = 0;
  private retryAtMs = 0;
  private lastError = '';

  constructor(
    private readonly initialMs: number,
    private readonly maxMs: number,
    private readonly now: () => number,
  ) {}

  /** Throws issuer_unavailable while the last failure's backoff runs. */
  check(): void {
    if (this.failures === 0) return;
    const waitMs = this.retryAtMs - this.now();
    if (waitMs > 0) {
      throw new AuthError('issuer_unavailable', `${this.lastError} (next attempt in ${Math.ceil(waitMs / 1000)}s)`);
    }
  }

  failed(message: string): void {
    this.failures++;
    const delay = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.failures - 1, 30));
    this.retryAtMs = this.now() + delay;
    this.lastError = message;
  }

  succeeded(): void {
    this.failures = 0;
  }
}
