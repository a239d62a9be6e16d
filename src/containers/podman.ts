import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../util/tools.js';

/**
 * Runs podman the way this project needs it: rootful, with the project's containers.conf (runc
 * instead of crun, ulimits capped at what the host allows; written by `make podman`). Tests and
 * commands go through here so that no caller forgets the configuration.
 */

export interface PodmanResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface PodmanRunOptions {
  /** Written to podman's standard input (for `kube play -`, `load`, ...). */
  input?: string;
  /** Killed (SIGKILL) after this long; default 120 s. */
  timeoutMs?: number;
}

/** Thrown when podman exits non-zero; the message carries its stderr, which says what went wrong. */
export class PodmanError extends Error {
  constructor(readonly args: string[], readonly result: PodmanResult) {
    super(`podman ${args.slice(0, 3).join(' ')} failed (exit ${result.code}): ${(result.stderr || result.stdout).trim().slice(-2000)}`);
    this.name = 'PodmanError';
  }
}

/** The containers.conf podman must use: CONTAINERS_CONF if set, else the one `make podman` writes. */
export function containersConf(): string {
  return process.env.CONTAINERS_CONF || join(projectRoot(), '.tools', 'podman', 'containers.conf');
}

/**
 * The environment for a podman child process. Where images are stored is the operator's choice
 * (CONTAINERS_STORAGE_CONF, from this process's environment, never a server's): it is kept even
 * when `base` is a minimal environment, so servers run from the store `make images` built into.
 */
export function podmanEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const storage = process.env.CONTAINERS_STORAGE_CONF;
  return { ...base, CONTAINERS_CONF: containersConf(), ...(storage ? { CONTAINERS_STORAGE_CONF: storage } : {}) };
}

/** The podman binary: TOLLGATE_PODMAN, else `podman` from PATH. */
export function podmanBinary(): string {
  return process.env.TOLLGATE_PODMAN || 'podman';
}

/** Output kept per stream, so a chatty command cannot grow this process without bound. */
const MAX_OUTPUT = 4 * 1024 * 1024;

/** Runs `podman ARGS` to completion. Resolves with the exit code (never throws for a non-zero one). */
export function podman(args: string[], opts: PodmanRunOptions = {}): Promise<PodmanResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(podmanBinary(), args, { env: podmanEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    child.stdout.on('data', (b: Buffer) => { if (outLen < MAX_OUTPUT) { out.push(b); outLen += b.length; } });
    child.stderr.on('data', (b: Buffer) => { if (errLen < MAX_OUTPUT) { err.push(b); errLen += b.length; } });
    const timeoutMs = opts.timeoutMs ?? 120_000;
    let settled = false;
    const settle = (f: () => void): void => { if (!settled) { settled = true; clearTimeout(timer); f(); } };
    // Rejects at once: a grandchild may keep the pipes open after podman itself is killed.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      settle(() => reject(new Error(`podman ${args.slice(0, 3).join(' ')} did not finish within ${timeoutMs} ms (killed)\n${Buffer.concat(err).toString('utf8').slice(-2000)}`)));
    }, timeoutMs);
    child.once('error', (e) => settle(() => reject(new Error(`cannot run ${podmanBinary()}: ${e.message} (install it with \`make podman\`)`, { cause: e }))));
    child.once('close', (code, signal) => settle(() => {
      if (signal) reject(new Error(`podman ${args.slice(0, 3).join(' ')} was killed by ${signal}`));
      else resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    }));
    child.stdin.on('error', () => undefined); // podman may exit before reading its input; the exit code tells
    child.stdin.end(opts.input ?? '');
  });
}

/** Runs `podman ARGS` and returns its stdout; throws PodmanError when it exits non-zero. */
export async function podmanOk(args: string[], opts: PodmanRunOptions = {}): Promise<string> {
  const r = await podman(args, opts);
  if (r.code !== 0) throw new PodmanError(args, r);
  return r.stdout;
}

export async function imageExists(ref: string): Promise<boolean> {
  return (await podman(['image', 'exists', ref])).code === 0;
}

export type Availability = { ok: true } | { ok: false; reason: string };

/**
 * Whether podman can run containers here with the project's configuration, and if not, why, in
 * words a test can print when it skips. Does not start a container.
 */
export async function podmanAvailability(): Promise<Availability> {
  if (!existsSync(containersConf())) return { ok: false, reason: `no ${containersConf()}: run \`make podman\`` };
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return { ok: false, reason: 'not root: the project uses rootful podman' };
  try {
    const r = await podman(['info', '--format', '{{.Host.OCIRuntime.Name}}'], { timeoutMs: 30_000 });
    if (r.code !== 0) return { ok: false, reason: `podman info fails: ${r.stderr.trim().slice(-500)}` };
    return { ok: true };
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
}
