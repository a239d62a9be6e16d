import { spawn, type ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import type { LogFile } from '../decisionlog/files.js';
import type { VerifyReport } from '../decisionlog/verify.js';
import { selfCommand } from '../util/self.js';

/**
 * Chain verification for the review page: runs `tollgate logs verify --json` (the very check the
 * CLI does, with the same key and witness rules) in a child process, so hashing a million records
 * never stalls the web server, and runs it again when the log has grown or changed.
 */

export interface VerifyState {
  report: VerifyReport | null;
  running: boolean;
  error: string | null;
  checkedAt: string | null;
}

export interface VerifyWatchOptions {
  dir: string;
  files: () => LogFile[];
  /** Extra flags for `logs verify` (--key, --witness, --strict). */
  flags: string[];
  /** How often to look for changes to the log. */
  everyMs?: number;
}

/** Sizes and names of the files: a change means the verdict may have changed. */
function fingerprint(files: LogFile[]): string {
  return files.map((f) => {
    try {
      const s = statSync(f.path);
      return `${f.name}:${s.size}:${s.mtimeMs}`;
    } catch {
      return `${f.name}:gone`;
    }
  }).join('|');
}

export class VerifyWatch {
  private current: VerifyState = { report: null, running: false, error: null, checkedAt: null };
  private child: ChildProcess | null = null;
  private timer: NodeJS.Timeout | null = null;
  private seen = '';

  constructor(private readonly o: VerifyWatchOptions) {}

  state(): VerifyState {
    return this.current;
  }

  start(): void {
    this.tick();
    this.timer = setInterval(() => this.tick(), this.o.everyMs ?? 5000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.child?.kill();
    this.child = null;
  }

  private tick(): void {
    if (this.child) return;
    const fp = fingerprint(this.o.files());
    if (fp === this.seen) return;
    this.seen = fp;
    this.run();
  }

  private run(): void {
    const self = selfCommand();
    const child = spawn(self.cmd, [...self.args, 'logs', 'verify', '--json', this.o.dir, ...this.o.flags], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.current = { ...this.current, running: true };
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => { if (err.length < 64) err.push(b); });
    child.on('error', (e) => this.finish(null, e.message));
    child.on('close', (code) => {
      if (code === 0 || code === 1) {
        try {
          this.finish(JSON.parse(Buffer.concat(out).toString('utf8')) as VerifyReport, null);
          return;
        } catch (e) {
          this.finish(null, `unreadable verify output (${(e as Error).message})`);
          return;
        }
      }
      this.finish(null, Buffer.concat(err).toString('utf8').trim() || `tollgate logs verify exited with ${code}`);
    });
  }

  private finish(report: VerifyReport | null, error: string | null): void {
    if (!this.child) return;
    this.child = null;
    this.current = { report: report ?? this.current.report, running: false, error, checkedAt: new Date().toISOString() };
  }
}
