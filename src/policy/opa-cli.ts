import { execFile } from 'node:child_process';
import { toolPath } from '../util/tools.js';

export interface OpaRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface OpaRunOptions {
  cwd?: string;
  timeoutMs?: number;
}

/**
 * Runs the opa binary and resolves with its exit code and output; a non-zero exit is a result,
 * not an exception. Only a missing binary, a timeout or a kill rejects.
 */
export function runOpa(args: string[], opts: OpaRunOptions = {}): Promise<OpaRun> {
  const bin = toolPath('opa');
  const timeout = opts.timeoutMs ?? 120_000;
  return new Promise((resolve, reject) => {
    execFile(bin, args, { cwd: opts.cwd, timeout, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (!err) return resolve({ code: 0, stdout, stderr });
      const e = err as NodeJS.ErrnoException & { code?: number | string; killed?: boolean; signal?: string | null };
      if (typeof e.code === 'number') return resolve({ code: e.code, stdout, stderr });
      if (e.killed || e.signal) return reject(new Error(`opa ${args[0] ?? ''} did not finish within ${timeout} ms (signal ${e.signal ?? 'unknown'})`));
      reject(new Error(`cannot run ${bin}: ${e.message}`));
    });
  });
}
