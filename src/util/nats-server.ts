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

export interface NatsClusterOptions extends Omit<NatsServerOptions, 'port' | 'cluster' | 'serverName' | 'storeDir'> {
  size: number;
  /** Client ports, one per member (0/unset: free ports). */
  ports?: number[];
  /** Each member's store is `<storeDir>/n<i>`; a temp dir when unset. */
  storeDir?: string;
}

/**
 * A JetStream cluster of nats-server processes with routes on loopback, for `tollgate up
 * --nats-cluster N` and the failover tests. Clients are given every member's URL (`urls`).
 */
export class NatsCluster {
  private constructor(readonly members: NatsServer[], private readonly ownsStore: string | null) {}

  static async start(o: NatsClusterOptions): Promise<NatsCluster> {
    if (!Number.isInteger(o.size) || o.size < 1) throw new Error(`a NATS cluster needs at least one member, got ${o.size}`);
    const host = o.host ?? '127.0.0.1';
    const ownsStore = o.storeDir ? null : mkdtempSync(join(tmpdir(), 'tollgate-nats-cluster-'));
    const base = o.storeDir ?? ownsStore!;
    const ports: number[] = [];
    const routePorts: number[] = [];
    for (let i = 0; i < o.size; i++) {
      ports.push(o.ports?.[i] || (await freePort(host)));
      routePorts.push(await freePort(host));
    }
    const members = await Promise.all(ports.map((port, i) => NatsServer.start({
      ...o, host, port, storeDir: join(base, `n${i + 1}`), serverName: `tollgate-n${i + 1}`,
      cluster: {
        name: 'tollgate', host, port: routePorts[i]!,
        routes: routePorts.filter((_, j) => j !== i).map((p) => `nats-route://${host}:${p}`),
      },
    })));
    return new NatsCluster(members, ownsStore);
  }

  /** Every member's client URL: what clients get as seeds. */
  get urls(): string[] { return this.members.map((m) => m.url); }

  /** The member whose nats-server calls itself `name` (stream info names leaders this way). */
  byName(name: string): NatsServer | undefined {
    const i = Number(/^tollgate-n(\d+)$/.exec(name)?.[1]) - 1;
    return this.members[i];
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => m.stop()));
  }

  async dispose(): Promise<void> {
    await Promise.all(this.members.map((m) => m.dispose()));
    if (this.ownsStore) rmSync(this.ownsStore, { recursive: true, force: true });
  }
}
