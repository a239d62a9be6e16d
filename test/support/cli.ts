import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { selfCommand } from '../../src/util/self.js';
import { projectRoot } from '../../src/util/tools.js';

/** The tollgate CLI as a user runs it: a child process, its exit code and what it printed. */

export interface CliRun { code: number | null; stdout: string; stderr: string; ms: number }

export interface CliOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** SIGINT after this long (default 60 s); a run that needs it is a hang. */
  timeoutMs?: number;
}

function spawnCli(args: string[], o: CliOptions): ChildProcess {
  const self = selfCommand();
  // `--import tsx` resolves from the child's cwd; a test running it in a temp dir needs the path.
  const selfArgs = self.args.map((a) => (a === 'tsx' ? pathToFileURL(join(projectRoot(), 'node_modules', 'tsx', 'dist', 'loader.mjs')).href : a));
  return spawn(self.cmd, [...selfArgs, ...args], { cwd: o.cwd, env: o.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs one command to its end. */
export function runTollgate(args: string[], o: CliOptions = {}): Promise<CliRun> {
  const t0 = Date.now();
  const child = spawnCli(args, o);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (b: Buffer) => { stdout += b.toString(); });
  child.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); });
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGINT'), o.timeoutMs ?? 60_000);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr, ms: Date.now() - t0 }); });
  });
}

/** A long-running command (`tollgate up`): wait for a line, read its output, stop it with Ctrl-C. */
export class RunningCli {
  stdout = '';
  stderr = '';
  readonly closed: Promise<number | null>;
  private readonly child: ChildProcess;

  constructor(args: string[], o: CliOptions = {}) {
    this.child = spawnCli(args, o);
    this.child.stdout!.on('data', (b: Buffer) => { this.stdout += b.toString(); });
    this.child.stderr!.on('data', (b: Buffer) => { this.stderr += b.toString(); });
    this.closed = new Promise((resolve) => this.child.on('close', (code) => resolve(code)));
  }

  /** Resolves when stdout + stderr match, rejects if the command ends first or after ms. */
  async waitFor(pattern: RegExp, ms = 120_000): Promise<void> {
    const deadline = Date.now() + ms;
    let ended = false;
    void this.closed.then(() => { ended = true; });
    while (!pattern.test(this.stdout + this.stderr)) {
      if (ended) throw new Error(`command ended before ${pattern}:\n${this.stdout}\n${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`no ${pattern} within ${ms} ms:\n${this.stdout}\n${this.stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stop(): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGINT');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 20_000);
    const code = await this.closed;
    clearTimeout(t);
    return code;
  }
}
