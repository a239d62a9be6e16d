import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderServerConfig, type ClusterSettings, type ServerTls } from '../nats/server-config.js';
import type { UserPermissions } from '../nats/permissions.js';
import { ManagedProcess } from './process.js';
import { freePort, waitForPort } from './net.js';
import { toolPath } from './tools.js';

export interface NatsServerOptions {
  host?: string;
  /** 0 or unset: a free port. */
  port?: number;
  /** JetStream store directory; a fresh temp dir (removed on stop) when unset. */
  storeDir?: string;
  echo?: boolean;
  /** TLS for clients; client certificates are required and mapped to `users`. */
  tls?: ServerTls;
  /** Who may connect and what each may do (see nats/permissions.ts). Needs tls. */
  users?: UserPermissions[];
  /** Join a cluster (routes on loopback). */
  cluster?: ClusterSettings;
  serverName?: string;
}

/**
 * A real nats-server with JetStream, on loopback. Used by `tollgate up` and by tests. It always runs
 * from a generated config file (`<store>/nats-server.conf`), so what it enforces can be read there.
 */
export class NatsServer {
  private constructor(
    readonly url: string,
    readonly port: number,
    readonly storeDir: string,
    readonly configFile: string,
    private proc: ManagedProcess,
    private readonly ownsStore: boolean,
    private readonly echo: boolean,
  ) {}

  static async start(opts: NatsServerOptions = {}): Promise<NatsServer> {
    const host = opts.host ?? '127.0.0.1';
    const port = opts.port || (await freePort(host));
    const ownsStore = !opts.storeDir;
    const storeDir = opts.storeDir ?? mkdtempSync(join(tmpdir(), 'tollgate-nats-'));
    mkdirSync(storeDir, { recursive: true, mode: 0o700 });
    const configFile = join(storeDir, 'nats-server.conf');
    writeFileSync(configFile, renderServerConfig({
      serverName: opts.serverName ?? `tollgate-${port}`, host, port, storeDir,
      tls: opts.tls ?? null, users: opts.users ?? [], cluster: opts.cluster ?? null,
    }), { mode: 0o600 });
    const echo = opts.echo ?? false;
    const proc = await NatsServer.spawn(configFile, host, port, echo);
    const scheme = opts.tls ? 'tls' : 'nats';
    return new NatsServer(`${scheme}://${host}:${port}`, port, storeDir, configFile, proc, ownsStore, echo);
  }

  private static spawn(configFile: string, host: string, port: number, echo: boolean): Promise<ManagedProcess> {
    return ManagedProcess.start('nats-server', toolPath('nats-server'), ['-c', configFile], {
      ready: () => waitForPort(port, host, 15000),
      echo,
    });
  }

  get running(): boolean { return this.proc.running; }
  get pid(): number | undefined { return this.proc.pid; }
  get output(): string { return this.proc.output; }

  /** Stops the server but keeps its JetStream store, so restart() brings the same streams back. */
  async stop(): Promise<void> { await this.proc.stop(); }

  /** SIGKILL, as a crash would. */
  async kill(): Promise<void> { this.proc.kill('SIGKILL'); await this.proc.exited; }

  async restart(): Promise<void> {
    if (this.proc.running) await this.proc.stop();
    const u = new URL(this.url);
    this.proc = await NatsServer.spawn(this.configFile, u.hostname, this.port, this.echo);
  }

  /** Stops and removes the store if we created it. */
  async dispose(): Promise<void> {
    await this.proc.stop();
    if (this.ownsStore) rmSync(this.storeDir, { recursive: true, force: true });
  }
}
