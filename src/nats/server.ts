import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { certificateIdentity } from './identity.js';
import { isRegionName } from './placement.js';
import { renderServerConfig, type ClusterSettings, type GatewaySettings, type RemoteGateway, type ServerTls } from './server-config.js';
import type { UserPermissions } from './permissions.js';
import { ManagedProcess } from '../util/process.js';
import { freePort, waitForPort } from '../util/net.js';
import { toolPath } from '../util/tools.js';

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
  /** Join other clusters (regions) through gateways; needs `cluster` with the same name. */
  gateway?: GatewaySettings;
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
      tls: opts.tls ?? null, users: opts.users ?? [], cluster: opts.cluster ?? null, gateway: gatewayWithPeer(opts),
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

/** Gateway peers present the servers' own certificate: its SPIFFE ID is the one they may show. */
function gatewayWithPeer(opts: NatsServerOptions): GatewaySettings | null {
  if (!opts.gateway) return null;
  if (!opts.tls || opts.gateway.peerIdentity) return opts.gateway;
  return { ...opts.gateway, peerIdentity: certificateIdentity(opts.tls.cert) };
}

export interface NatsClusterOptions extends Omit<NatsServerOptions, 'port' | 'cluster' | 'serverName' | 'storeDir' | 'gateway'> {
  size: number;
  /** Cluster name (a region's name in a supercluster); default "tollgate". */
  name?: string;
  /** Gateway listeners, one port per member, and the other regions to join. */
  gateway?: { ports: number[]; remotes: RemoteGateway[]; advertise?: string[] };
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
  private constructor(readonly name: string, readonly members: NatsServer[], private readonly ownsStore: string | null) {}

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
    const name = o.name ?? 'tollgate';
    const { gateway, ...serverOpts } = o;
    if (gateway && gateway.ports.length !== o.size) throw new Error(`a gateway port per member: ${o.size} members, ${gateway.ports.length} ports`);
    const members = await Promise.all(ports.map((port, i) => NatsServer.start({
      ...serverOpts, host, port, storeDir: join(base, `n${i + 1}`), serverName: NatsCluster.memberName(name, i),
      cluster: {
        name, host, port: routePorts[i]!,
        // A one-server region lists itself: nats-server ignores a self-route, and JetStream in a
        // supercluster refuses to start a cluster with no route configured at all.
        routes: routePorts.filter((_, j) => j !== i || o.size === 1).map((p) => `nats-route://${host}:${p}`),
      },
      ...(gateway ? { gateway: { name, host, port: gateway.ports[i]!, gateways: gateway.remotes, ...(gateway.advertise ? { advertise: gateway.advertise[i]! } : {}) } } : {}),
    })));
    return new NatsCluster(name, members, ownsStore);
  }

  /** Server names are unique across a supercluster: JetStream tells servers apart by name. */
  private static memberName(cluster: string, i: number): string {
    return cluster === 'tollgate' ? `tollgate-n${i + 1}` : `tollgate-${cluster}-n${i + 1}`;
  }

  /** Every member's client URL: what clients get as seeds. */
  get urls(): string[] { return this.members.map((m) => m.url); }

  /** The member whose nats-server calls itself `name` (stream info names leaders this way). */
  byName(name: string): NatsServer | undefined {
    return this.members.find((_, i) => NatsCluster.memberName(this.name, i) === name);
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => m.stop()));
  }

  async dispose(): Promise<void> {
    await Promise.all(this.members.map((m) => m.dispose()));
    if (this.ownsStore) rmSync(this.ownsStore, { recursive: true, force: true });
  }
}

export interface NatsSuperclusterOptions extends Omit<NatsClusterOptions, 'size' | 'name' | 'gateway' | 'ports'> {
  /** One cluster per region; a region's name is its NATS cluster name (what placement names). */
  regions: Array<{ name: string; size: number }>;
  /**
   * The port the other regions dial for a member's gateway listener `port` (default: `port`
   * itself). Tests put a relay there that they can cut, to part the regions with every server up.
   */
  gatewayVia?: (region: string, port: number) => Promise<number>;
}

/**
 * Several NATS clusters joined by gateways into one supercluster, one per region (docs/multi-region.md):
 * one JetStream across them, each stream placed in one region's cluster and reachable from all.
 * Every gateway is mutual TLS when `tls` is given, and admits only the servers' own identity.
 */
export class NatsSupercluster {
  /** `gateways`: each region's gateway URLs, as every member was given them. */
  private constructor(readonly regions: Map<string, NatsCluster>, readonly gateways: RemoteGateway[], private readonly ownsStore: string | null) {}

  static async start(o: NatsSuperclusterOptions): Promise<NatsSupercluster> {
    const names = o.regions.map((r) => r.name);
    if (names.length < 2) throw new Error('a supercluster joins at least two regions');
    if (new Set(names).size !== names.length) throw new Error(`region names must differ: ${names.join(', ')}`);
    const bad = names.find((n) => !isRegionName(n));
    if (bad !== undefined) throw new Error(`"${bad}" is not a region name (1-32 letters, digits or "-": it becomes the NATS cluster name)`);
    const host = o.host ?? '127.0.0.1';
    const ownsStore = o.storeDir ? null : mkdtempSync(join(tmpdir(), 'tollgate-nats-super-'));
    const base = o.storeDir ?? ownsStore!;
    const gwPorts = new Map<string, number[]>();
    for (const r of o.regions) {
      const ports: number[] = [];
      for (let i = 0; i < r.size; i++) ports.push(await freePort(host));
      gwPorts.set(r.name, ports);
    }
    const { regions, gatewayVia, ...rest } = o;
    const dialed = new Map<string, number[]>();
    for (const r of regions) dialed.set(r.name, await Promise.all(gwPorts.get(r.name)!.map((p) => (gatewayVia ? gatewayVia(r.name, p) : p))));
    const remotes: RemoteGateway[] = regions.map((r) => ({ name: r.name, urls: dialed.get(r.name)!.map((p) => `nats://${host}:${p}`) }));
    const started = await Promise.allSettled(regions.map((r) => NatsCluster.start({
      ...rest, host, size: r.size, name: r.name, storeDir: join(base, r.name),
      // Self-gateway entries are ignored by nats-server, so every region gets the same list.
      gateway: { ports: gwPorts.get(r.name)!, remotes, ...(gatewayVia ? { advertise: dialed.get(r.name)!.map((p) => `${host}:${p}`) } : {}) },
    })));
    const ok = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) {
      await Promise.all(ok.map((c) => c.dispose()));
      if (ownsStore) rmSync(ownsStore, { recursive: true, force: true });
      throw (failed as PromiseRejectedResult).reason;
    }
    return new NatsSupercluster(new Map(ok.map((c) => [c.name, c])), remotes, ownsStore);
  }

  region(name: string): NatsCluster {
    const c = this.regions.get(name);
    if (!c) throw new Error(`no region ${name} (have ${[...this.regions.keys()].join(', ')})`);
    return c;
  }

  async dispose(): Promise<void> {
    await Promise.all([...this.regions.values()].map((c) => c.dispose()));
    if (this.ownsStore) rmSync(this.ownsStore, { recursive: true, force: true });
  }
}
