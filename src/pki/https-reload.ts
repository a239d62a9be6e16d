import { readFileSync } from 'node:fs';
import type { Server } from 'node:https';

/**
 * An HTTPS server's certificate, re-read from its files so a renewed pair (a rewritten Secret
 * volume, cert-manager) is served to new connections without a restart. A half-written or
 * mismatched pair keeps the current one.
 */

export type ReloadEvent =
  | { kind: 'reloaded' }
  | { kind: 'unreadable' | 'unusable'; error: string };

export class HttpsCertReloader {
  private pem: { cert: string; key: string };
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly server: Server, private readonly files: { cert: string; key: string }, private readonly onEvent: (e: ReloadEvent) => void) {
    this.pem = HttpsCertReloader.read(files);
  }

  /** The pair as the server should start with it. */
  static read(files: { cert: string; key: string }): { cert: string; key: string } {
    return { cert: readFileSync(files.cert, 'utf8'), key: readFileSync(files.key, 'utf8') };
  }

  get current(): { cert: string; key: string } { return this.pem; }

  /** Re-reads every `ms` (0: never); the timer does not keep the process alive. */
  every(ms: number): this {
    if (ms > 0 && !this.timer) {
      this.timer = setInterval(() => this.reload(), ms);
      this.timer.unref();
    }
    return this;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Returns true when a new pair was loaded. */
  reload(): boolean {
    let next: { cert: string; key: string };
    try {
      next = HttpsCertReloader.read(this.files);
    } catch (e) {
      this.onEvent({ kind: 'unreadable', error: (e as Error).message });
      return false;
    }
    if (next.cert === this.pem.cert && next.key === this.pem.key) return false;
    try {
      this.server.setSecureContext({ cert: next.cert, key: next.key, minVersion: 'TLSv1.2' });
    } catch (e) {
      this.onEvent({ kind: 'unusable', error: (e as Error).message });
      return false;
    }
    this.pem = next;
    this.onEvent({ kind: 'reloaded' });
    return true;
  }
}
