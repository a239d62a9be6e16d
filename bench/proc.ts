import { readFileSync } from 'node:fs';
import { ManagedProcess } from '../src/util/process.js';

/** The core servers under test run on; the load generator gets the other one. */
export const SERVER_CORE = 1;
export const LOAD_CORE = 0;

export interface PinnedProcessOptions {
  name: string;
  cmd: string;
  args: string[];
  core: number;
  /** Ready once a line of output matches, or once the probe resolves. */
  readyPattern?: RegExp;
  ready?: () => Promise<void>;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
  echo?: boolean;
}

/**
 * A process confined to one core with `taskset`. taskset execs the command, so the pid we hold is
 * the server's own and /proc/<pid> describes it (not a wrapper).
 */
export async function startPinned(o: PinnedProcessOptions): Promise<ManagedProcess> {
  return ManagedProcess.start(o.name, 'taskset', ['-c', String(o.core), o.cmd, ...o.args], {
    readyPattern: o.readyPattern, ready: o.ready, env: o.env, cwd: o.cwd, timeoutMs: o.timeoutMs ?? 90_000, echo: o.echo,
  });
}

function statusField(pid: number, field: string): number | null {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null; // exited
  }
}

/** Peak resident set size over the process's life so far (VmHWM), in bytes. */
export function peakRss(pid: number): number | null {
  return statusField(pid, 'VmHWM');
}

export function currentRss(pid: number): number | null {
  return statusField(pid, 'VmRSS');
}

/**
 * Samples VmRSS while load runs, in case the kernel does not keep VmHWM (it always has on Linux,
 * but a sampled maximum is a cross-check that costs nothing).
 */
export class RssSampler {
  private max = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly pid: number, everyMs = 200) {
    this.timer = setInterval(() => { this.max = Math.max(this.max, currentRss(this.pid) ?? 0); }, everyMs);
    this.timer.unref();
  }

  stop(): number {
    clearInterval(this.timer);
    this.max = Math.max(this.max, currentRss(this.pid) ?? 0);
    return this.max;
  }
}

/** Total CPU time (user + system) the process has used, in seconds: /proc/<pid>/stat fields 14 and 15. */
export function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces; fields after it start past the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(rest[11]) + Number(rest[12]);
    return ticks / 100; // USER_HZ is 100 on every Linux we run on
  } catch {
    return null;
  }
}
