import { spawn, type ChildProcess } from 'node:child_process';

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Resolve start() once a line of output matches this. */
  readyPattern?: RegExp;
  /** Or once this async probe resolves. */
  ready?: () => Promise<void>;
  timeoutMs?: number;
  /** Echo the child's output to ours, prefixed with its name. */
  echo?: boolean;
}

/**
 * A child process we own: output is kept (bounded) for error messages, and it is stopped when this
 * process exits, so tests and `tollgate up` never leave servers behind.
 */
export class ManagedProcess {
  private static readonly live = new Set<ManagedProcess>();
  private static hooked = false;
  private logTail = '';
  readonly exited: Promise<number | null>;

  private constructor(readonly name: string, readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => child.once('exit', (code, sig) => {
      ManagedProcess.live.delete(this);
      resolve(code ?? (sig ? -1 : null));
    }));
  }

  static async start(name: string, cmd: string, args: string[], opts: StartOptions = {}): Promise<ManagedProcess> {
    ManagedProcess.hookExit();
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const mp = new ManagedProcess(name, child);
    ManagedProcess.live.add(mp);
    let readyResolve: (() => void) | undefined;
    const readyByLine = new Promise<void>((r) => { readyResolve = r; });
    const onData = (buf: Buffer): void => {
      const text = buf.toString('utf8');
      mp.logTail = (mp.logTail + text).slice(-64 * 1024);
      if (opts.echo) for (const line of text.split('\n')) if (line) process.stderr.write(`[${name}] ${line}\n`);
      if (opts.readyPattern && opts.readyPattern.test(mp.logTail)) readyResolve?.();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    const spawnError = new Promise<never>((_, reject) => child.once('error', (e) => reject(new Error(`${name}: cannot start ${cmd}: ${e.message}`))));
    const early = mp.exited.then((code) => { throw new Error(`${name} exited (code ${code}) before it was ready:\n${mp.logTail.slice(-4000)}`); });
    const timeoutMs = opts.timeoutMs ?? 20000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${name} not ready after ${timeoutMs} ms:\n${mp.logTail.slice(-4000)}`)), timeoutMs); });
    const ready = opts.ready ? opts.ready() : opts.readyPattern ? readyByLine : Promise.resolve();
    try {
      await Promise.race([ready, early, spawnError, timeout]);
    } catch (e) {
      mp.kill('SIGKILL');
      throw e;
    } finally {
      clearTimeout(timer);
      early.catch(() => undefined);
      spawnError.catch(() => undefined);
    }
    return mp;
  }

  get pid(): number | undefined { return this.child.pid; }
  get output(): string { return this.logTail; }
  get running(): boolean { return this.child.exitCode === null && this.child.signalCode === null; }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.running) this.child.kill(signal);
  }

  /** SIGTERM, then SIGKILL if it has not exited after graceMs. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.running) return;
    this.kill('SIGTERM');
    const t = setTimeout(() => this.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(t);
  }

  private static hookExit(): void {
    if (ManagedProcess.hooked) return;
    ManagedProcess.hooked = true;
    process.once('exit', () => { for (const p of ManagedProcess.live) p.kill('SIGKILL'); });
  }
}
