import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';

/**
 * Digest of every file under `dir` (names and contents; hidden entries and node_modules skipped),
 * so a watcher can tell a real change from an editor touching a file.
 */
export async function fingerprintDir(dir: string): Promise<string> {
  const h = createHash('sha256');
  const walk = async (d: string): Promise<void> => {
    const entries = await readdir(d, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (e.name.startsWith('.') || e.name === 'node_modules') continue;
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) {
        // A file deleted between readdir and readFile is simply absent from this fingerprint.
        const body = await readFile(p).catch(() => null);
        if (body) h.update(relative(dir, p)).update('\0').update(createHash('sha256').update(body).digest());
      }
    }
  };
  await walk(dir);
  return h.digest('hex');
}

export interface DirWatcherOptions {
  /** Quiet time after the last fs event before reacting (editors write in bursts). */
  debounceMs: number;
  /** Fallback poll: fs.watch misses events on some filesystems (NFS, bind mounts, renamed dirs). */
  pollMs: number;
}

/**
 * Calls `onChange` when the directory's fingerprint changes, found by fs.watch (debounced) or by
 * polling. Calls are never concurrent: a change found while `onChange` runs is reported after it.
 */
export class DirWatcher {
  private fsw: FSWatcher | null = null;
  private debounce: NodeJS.Timeout | null = null;
  private poll: NodeJS.Timeout | null = null;
  private last: string | null = null;
  private running = false;
  private again = false;
  private stopped = true;

  constructor(
    readonly dir: string,
    private readonly onChange: (fingerprint: string) => Promise<void>,
    private readonly opts: DirWatcherOptions,
    private readonly onError: (e: Error) => void = () => undefined,
  ) {}

  /** Starts watching; `baseline` is the fingerprint already handled (no call until it changes). */
  start(baseline: string | null): void {
    this.stopped = false;
    this.last = baseline;
    this.watchFs();
    this.poll = setInterval(() => this.check(), this.opts.pollMs);
    this.poll.unref();
  }

  stop(): void {
    this.stopped = true;
    this.fsw?.close();
    this.fsw = null;
    if (this.debounce) clearTimeout(this.debounce);
    if (this.poll) clearInterval(this.poll);
    this.debounce = this.poll = null;
  }

  private watchFs(): void {
    try {
      this.fsw = watch(this.dir, { recursive: true, persistent: false }, () => this.kick());
      this.fsw.on('error', () => {
        // The directory was removed or replaced; polling carries on and re-arms the watch.
        this.fsw?.close();
        this.fsw = null;
      });
    } catch {
      this.fsw = null;
    }
  }

  private kick(): void {
    if (this.stopped) return;
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => { this.debounce = null; this.check(); }, this.opts.debounceMs);
  }

  /** Compares the fingerprint now and reports a change; public so callers can force a check. */
  check(): void {
    if (this.stopped) return;
    if (this.running) { this.again = true; return; }
    this.running = true;
    void this.run().finally(() => {
      this.running = false;
      if (this.again && !this.stopped) { this.again = false; this.check(); }
    });
  }

  private async run(): Promise<void> {
    if (!this.fsw) this.watchFs();
    let fp: string;
    try {
      fp = await fingerprintDir(this.dir);
    } catch (e) {
      this.onError(e as Error);
      return;
    }
    if (fp === this.last) return;
    this.last = fp;
    try {
      await this.onChange(fp);
    } catch (e) {
      this.onError(e as Error);
    }
  }
}
