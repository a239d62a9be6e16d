import * as grpc from '@grpc/grpc-js';
import { aggregatedDiscoveryService } from '../envoy/protos.js';
import { meshServerCredentials, verifiedPeer, type TlsFiles, type WorkloadIdentity } from '../pki/index.js';
import { meshServerOptions } from '../pki/grpc.js';
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
  /**
   * mTLS: every client must present a certificate from `ca` (without one it fails the TLS
   * handshake) carrying a SPIFFE ID of `trustDomain` (else its stream is refused UNAUTHENTICATED
   * before its first request is read). Unset: plaintext, for tests and tools only
   * (`tollgate controlplane serve` always sets it).
   */
  tls?: TlsFiles & { trustDomain: string };
  /**
   * Admits a node on its first request and returns the snapshot-cache key it is served from
   * (default: its node id). With tls, `peer` is the verified certificate identity; throw
   * NodeRefused to end the stream with a status that says why.
   */
  admit?: (node: NodeInfo, peer: PeerIdentity | null) => string;
  /** An admitted stream ended (Envoy went away, or the server stopped). */
  onStreamEnd?: (key: string, node: NodeInfo) => void;
}

/** Who is at the other end of a stream, as the TLS handshake proved it. */
export interface PeerIdentity {
  spiffeId: string;
  identity: WorkloadIdentity;
  /** The certificate's subject CN; workload certificates carry `<namespace>/<pod>`. */
  commonName?: string;
  /** host:port the connection came from (for logs). */
  address: string;
}

/** Why a stream was refused; each is counted in status().refusals. */
export type RefusalReason = 'no_certificate' | 'bad_identity' | 'not_registered' | 'node_id_mismatch';

/** Thrown by an admit hook: the stream ends with this status and message, and is logged and counted. */
export class NodeRefused extends Error {
  constructor(readonly reason: RefusalReason, message: string) {
    super(message);
    this.name = 'NodeRefused';
  }
}

export interface RefusalEvent { reason: RefusalReason; message: string; nodeId: string | null; peer: string | null; address: string }

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
  /** Streams refused since start, by reason. */
  refusals: Record<RefusalReason, number>;
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
  private readonly refusalListeners = new Set<Listener<RefusalEvent>>();
  private readonly refusals: Record<RefusalReason, number> = { no_certificate: 0, bad_identity: 0, not_registered: 0, node_id_mismatch: 0 };
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
    // Envoy keeps one ADS stream open for its lifetime; pings (every 30 s, 10 s to answer) keep NATs
    // and LBs from dropping it. A connection without a stream is closed after a while, and one
    // without a mesh certificate at the handshake (src/pki/grpc.ts).
    const server = new grpc.Server(meshServerOptions({ 'grpc.keepalive_time_ms': 30_000, 'grpc.keepalive_timeout_ms': 10_000 }));
    const port = await new Promise<number>((resolve, reject) => {
      const creds = opts.tls ? meshServerCredentials(opts.tls) : grpc.ServerCredentials.createInsecure();
      server.bindAsync(formatAddress(host, opts.port ?? 0), creds, (err, p) => (err ? reject(err) : resolve(p)));
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

  /** Called for every refused stream. */
  onRefusal(listener: Listener<RefusalEvent>): () => void {
    this.refusalListeners.add(listener);
    return () => this.refusalListeners.delete(listener);
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
      refusals: { ...this.refusals },
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
    const address = call.getPeer();
    let peer: PeerIdentity | null = null;
    if (this.opts.tls) {
      const p = verifiedPeer(call, this.opts.tls.trustDomain);
      if (!p.ok) {
        this.refuse(call, new NodeRefused(p.reason, p.message), null, address);
        return;
      }
      peer = { spiffeId: p.spiffeId, identity: p.identity, address, ...(p.commonName !== undefined ? { commonName: p.commonName } : {}) };
    }
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
      admit: (node) => (this.opts.admit ? this.opts.admit(node, peer) : node.id),
      nextNonce: () => String(++this.nonce),
      controlPlaneId: this.opts.controlPlaneId ?? 'tollgate',
    });
    this.streams.set(id, { call, state, connectedAt: new Date() });
    let ended = false;
    const done = (): void => {
      state.close();
      this.streams.delete(id);
      if (ended) return;
      ended = true;
      const key = state.cacheKey;
      if (key !== undefined && state.nodeInfo) this.opts.onStreamEnd?.(key, state.nodeInfo);
    };
    call.on('data', (req: DiscoveryRequest) => {
      try {
        state.handle(req);
      } catch (e) {
        if (e instanceof NodeRefused) {
          done();
          this.refuse(call, e, req.node?.id ?? null, address, peer?.spiffeId ?? null);
          return;
        }
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

  /**
   * Ends every stream served from cache key `key` with PERMISSION_DENIED (its registration was
   * withdrawn): Envoy keeps its last config while disconnected, but gets nothing new, and its
   * reconnect is judged afresh. Returns how many streams were ended.
   */
  endStreams(key: string, message: string): number {
    let n = 0;
    for (const { call, state } of this.streams.values()) {
      if (state.cacheKey !== key) continue;
      n++;
      this.opts.logger?.warn({ key, message }, 'xds: stream ended');
      call.emit('error', { code: grpc.status.PERMISSION_DENIED, details: `tollgate xDS: ${message}` });
    }
    return n;
  }

  private refuse(call: grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>, e: NodeRefused, nodeId: string | null, address: string, spiffeId: string | null = null): void {
    this.refusals[e.reason]++;
    const ev: RefusalEvent = { reason: e.reason, message: e.message, nodeId, peer: spiffeId, address };
    this.opts.logger?.warn(ev, 'xds: stream refused');
    for (const l of this.refusalListeners) l(ev);
    const code = e.reason === 'no_certificate' || e.reason === 'bad_identity' ? grpc.status.UNAUTHENTICATED : grpc.status.PERMISSION_DENIED;
    call.emit('error', { code, details: `tollgate xDS: ${e.message}` });
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
