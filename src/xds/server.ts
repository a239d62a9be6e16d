import * as grpc from '@grpc/grpc-js';
import { aggregatedDiscoveryService } from '../envoy/protos.js';
import type { SnapshotCache } from './cache.js';
import type { DiscoveryRequest, DiscoveryResponse } from './messages.js';
import { AdsStreamState, type AckEvent, type EncodeFailure, type NackEvent, type NodeInfo, type TypeStatus } from './protocol.js';

/**
 * ADS (`envoy.service.discovery.v3.AggregatedDiscoveryService`) on @grpc/grpc-js, serving the
 * snapshots in a SnapshotCache. State-of-the-world only: `DeltaAggregatedResources` answers
 * UNIMPLEMENTED, and Envoy (bootstrapped with `api_type: GRPC`) never calls it.
 */

export interface AdsServerOptions {
  /** Loopback unless told otherwise. */
  host?: string;
  /** 0 or unset: a free port (read it back from `port`). */
  port?: number;
  cache: SnapshotCache;
  /** Reported to Envoy as `control_plane.identifier`. */
  controlPlaneId?: string;
  /** How many distinct NACKs to remember (oldest dropped first). */
  maxNacks?: number;
  /** pino-compatible; silent when unset (use onNack / status() to observe). */
  logger?: AdsLogger;
  /** A node connected: build its snapshot from node.metadata here (called before the lookup). */
  onNode?: (node: NodeInfo) => void;
}

export interface AdsLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface NackRecord extends NackEvent {
  nodeId: string;
  at: Date;
}

export interface StreamStatus {
  id: number;
  node: NodeInfo | undefined;
  connectedAt: Date;
  types: TypeStatus[];
}

export interface AdsStatus {
  address: string;
  streams: StreamStatus[];
  nacks: NackRecord[];
  encodeFailures: EncodeFailure[];
}

type Listener<T> = (e: T) => void;

function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export class AdsServer {
  private readonly streams = new Map<number, { call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>; state: AdsStreamState; connectedAt: Date }>();
  private readonly nackList: NackRecord[] = [];
  private readonly nackKeys = new Set<string>();
  private readonly encodeFailureList: EncodeFailure[] = [];
  private readonly nackListeners = new Set<Listener<NackRecord>>();
  private readonly ackListeners = new Set<Listener<AckEvent>>();
  private nextStreamId = 0;
  private nonce = 0;
  private stopped = false;

  private constructor(
    private readonly server: grpc.Server,
    readonly host: string,
    readonly port: number,
    private readonly opts: AdsServerOptions,
  ) {}

  static async start(opts: AdsServerOptions): Promise<AdsServer> {
    const host = opts.host ?? '127.0.0.1';
    // Envoy keeps one ADS stream open for its lifetime; pings keep NATs and LBs from dropping it.
    const server = new grpc.Server({ 'grpc.keepalive_time_ms': 30_000, 'grpc.keepalive_timeout_ms': 10_000 });
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(formatAddress(host, opts.port ?? 0), grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
    });
    const ads = new AdsServer(server, host, port, opts);
    server.addService(aggregatedDiscoveryService(), {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>) => ads.onStream(call),
      DeltaAggregatedResources: (call: grpc.ServerDuplexStream<unknown, unknown>) => {
        call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: 'Tollgate serves state-of-the-world ADS only; set ads_config.api_type to GRPC' });
      },
    });
    return ads;
  }

  get address(): string { return formatAddress(this.host, this.port); }

  /** Distinct NACKs (node, type, version, message), oldest first. */
  get nacks(): readonly NackRecord[] { return [...this.nackList]; }

  /** Called once per distinct NACK: a version Envoy keeps rejecting is reported only the first time. */
  onNack(listener: Listener<NackRecord>): () => void {
    this.nackListeners.add(listener);
    return () => this.nackListeners.delete(listener);
  }

  onAck(listener: Listener<AckEvent>): () => void {
    this.ackListeners.add(listener);
    return () => this.ackListeners.delete(listener);
  }

  status(): AdsStatus {
    return {
      address: this.address,
      streams: [...this.streams.entries()].map(([id, s]) => ({ id, node: s.state.nodeInfo, connectedAt: s.connectedAt, types: s.state.status() })),
      nacks: [...this.nackList],
      encodeFailures: [...this.encodeFailureList],
    };
  }

  /** Ends every stream (Envoy keeps its config and reconnects elsewhere or later), then the server. */
  async stop(graceMs = 2000): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const { call, state } of this.streams.values()) {
      state.close();
      if (!call.cancelled) call.end();
    }
    this.streams.clear();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => { this.server.forceShutdown(); resolve(); }, graceMs);
      this.server.tryShutdown(() => { clearTimeout(timer); resolve(); });
    });
  }

  private onStream(call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>): void {
    if (this.stopped) {
      call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'control plane shutting down' });
      return;
    }
    const id = ++this.nextStreamId;
    const log = this.opts.logger;
    const state = new AdsStreamState(this.opts.cache, {
      write: (res) => {
        if (call.cancelled || call.writableEnded) return;
        call.write(res);
        log?.info({ stream: id, node: state.nodeInfo?.id, type: res.typeUrl, version: res.versionInfo, nonce: res.nonce, resources: res.resources.length }, 'xds: sent');
      },
      onAck: (e) => {
        log?.info({ stream: id, node: e.node.id, type: e.typeUrl, version: e.version }, 'xds: ACK');
        for (const l of this.ackListeners) l(e);
      },
      onNack: (e) => this.recordNack(e),
      onEncodeFailure: (e) => {
        this.encodeFailureList.push(e);
        if (this.encodeFailureList.length > 100) this.encodeFailureList.shift();
        log?.warn({ node: e.node.id, type: e.typeUrl, version: e.version, error: e.message }, 'xds: snapshot resource cannot be encoded; not sent');
      },
      onIdentify: (node) => this.opts.onNode?.(node),
      nextNonce: () => String(++this.nonce),
      controlPlaneId: this.opts.controlPlaneId ?? 'tollgate',
    });
    this.streams.set(id, { call, state, connectedAt: new Date() });
    const done = (): void => {
      state.close();
      this.streams.delete(id);
    };
    call.on('data', (req: DiscoveryRequest) => {
      try {
        state.handle(req);
      } catch (e) {
        log?.warn({ stream: id, error: e instanceof Error ? e.message : String(e) }, 'xds: request handling failed');
        done();
        call.emit('error', { code: grpc.status.INTERNAL, details: 'control plane error' });
      }
    });
    call.on('end', () => { done(); if (!call.writableEnded) call.end(); });
    call.on('cancelled', done);
    call.on('error', done);
    call.on('close', done);
  }

  private recordNack(e: NackEvent): void {
    const key = JSON.stringify([e.node.id, e.typeUrl, e.version, e.message]);
    if (this.nackKeys.has(key)) return;
    this.nackKeys.add(key);
    const rec: NackRecord = { ...e, nodeId: e.node.id, at: new Date() };
    this.nackList.push(rec);
    const max = this.opts.maxNacks ?? 1000;
    while (this.nackList.length > max) {
      const old = this.nackList.shift() as NackRecord;
      this.nackKeys.delete(JSON.stringify([old.nodeId, old.typeUrl, old.version, old.message]));
    }
    this.opts.logger?.warn({ node: e.node.id, type: e.typeUrl, version: e.version, kept: e.acceptedVersion, error: e.message }, 'xds: Envoy rejected config (NACK)');
    for (const l of this.nackListeners) l(rec);
  }
}
