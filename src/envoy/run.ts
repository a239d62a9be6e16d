import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManagedProcess } from '../util/process.js';
import { toolPath } from '../util/tools.js';
import { writeBootstrap } from './bootstrap.js';
import type { JsonObject } from './protojson.js';

export type EnvoyLogLevel = 'trace' | 'debug' | 'info' | 'warning' | 'error' | 'critical' | 'off';

export interface StartEnvoyOptions {
  /** A bootstrap file, or … */
  configPath?: string;
  /** … a bootstrap object, written to a private temp file removed when Envoy stops. */
  config?: JsonObject;
  /** Must match the bootstrap's admin port. */
  adminPort: number;
  adminHost?: string;
  /** Unique per Envoy on the machine; chosen for you when unset. */
  baseId?: number;
  logLevel?: EnvoyLogLevel;
  /** Worker threads; Envoy's default is one per core. */
  concurrency?: number;
  /** Echo Envoy's log to stderr. */
  echo?: boolean;
  /**
   * `live` (default): resolve once `/ready` says LIVE, i.e. every initial xDS fetch is done.
   * `admin`: resolve as soon as admin answers (Envoy may still wait for its control plane).
   */
  waitFor?: 'live' | 'admin';
  timeoutMs?: number;
}

export interface RunningEnvoy {
  readonly adminUrl: string;
  readonly pid: number | undefined;
  readonly running: boolean;
  /** Envoy's recent log output (bounded), for error messages. */
  readonly output: string;
  readonly exited: Promise<number | null>;
  /** GET an admin path (`/ready`, `/clusters`, `/stats?filter=…`) and return the body. */
  admin(path: string): Promise<string>;
  /** `/config_dump` parsed; `includeEds` adds endpoint config, `resource` narrows it (e.g. `dynamic_listeners`). */
  configDump(opts?: { includeEds?: boolean; resource?: string }): Promise<unknown>;
  /** SIGTERM, then SIGKILL after a grace period. */
  stop(): Promise<void>;
  /** SIGKILL, as a crash would. */
  kill(): Promise<void>;
}

let baseIdCounter = 0;

/**
 * Hot restart is disabled, but Envoy still derives shared-memory and socket names from the base
 * id, so parallel Envoys (tests, several sidecars on one machine) each get their own.
 */
function uniqueBaseId(): number {
  baseIdCounter = (baseIdCounter + 1) % 1000;
  return ((process.pid % 2_000_000) * 1000 + baseIdCounter) % 0x7fffffff;
}

async function adminGet(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.text() };
}

async function waitReady(adminUrl: string, want: 'live' | 'admin', exited: () => boolean): Promise<void> {
  for (;;) {
    if (exited()) return; // ManagedProcess reports the exit with Envoy's log
    try {
      const { status, body } = await adminGet(`${adminUrl}/ready`);
      if (want === 'admin' || (status === 200 && body.trim() === 'LIVE')) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startEnvoy(opts: StartEnvoyOptions): Promise<RunningEnvoy> {
  if (!opts.configPath === !opts.config) throw new Error('startEnvoy: pass exactly one of configPath or config');
  let tempDir: string | undefined;
  let configPath = opts.configPath;
  if (opts.config) {
    tempDir = mkdtempSync(join(tmpdir(), 'tollgate-envoy-'));
    configPath = join(tempDir, 'envoy.json');
    await writeBootstrap(configPath, opts.config);
  }
  const cleanup = (): void => { if (tempDir) rmSync(tempDir, { recursive: true, force: true }); };
  const adminUrl = `http://${opts.adminHost ?? '127.0.0.1'}:${opts.adminPort}`;
  const args = [
    '-c', configPath as string,
    '--base-id', String(opts.baseId ?? uniqueBaseId()),
    '--disable-hot-restart',
    '--log-level', opts.logLevel ?? 'warning',
  ];
  if (opts.concurrency !== undefined) args.push('--concurrency', String(opts.concurrency));
  let proc: ManagedProcess | undefined;
  let exited = false;
  try {
    proc = await ManagedProcess.start('envoy', toolPath('envoy'), args, {
      echo: opts.echo ?? false,
      timeoutMs: opts.timeoutMs ?? 30_000,
      ready: () => waitReady(adminUrl, opts.waitFor ?? 'live', () => exited),
    });
  } catch (e) {
    exited = true;
    cleanup();
    throw e;
  }
  const p = proc;
  void p.exited.then(() => { exited = true; cleanup(); });
  return {
    adminUrl,
    get pid() { return p.pid; },
    get running() { return p.running; },
    get output() { return p.output; },
    exited: p.exited,
    async admin(path: string): Promise<string> {
      const { status, body } = await adminGet(adminUrl + path);
      if (status >= 400) throw new Error(`envoy admin ${path}: HTTP ${status}: ${body.slice(0, 500)}`);
      return body;
    },
    async configDump(o: { includeEds?: boolean; resource?: string } = {}): Promise<unknown> {
      const q = new URLSearchParams();
      if (o.includeEds) q.set('include_eds', '');
      if (o.resource) q.set('resource', o.resource);
      const qs = q.toString();
      const { status, body } = await adminGet(`${adminUrl}/config_dump${qs ? '?' + qs : ''}`);
      if (status >= 400) throw new Error(`envoy admin /config_dump: HTTP ${status}: ${body.slice(0, 500)}`);
      return JSON.parse(body) as unknown;
    },
    async stop(): Promise<void> { await p.stop(); },
    async kill(): Promise<void> { p.kill('SIGKILL'); await p.exited; },
  };
}
