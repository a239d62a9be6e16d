import { packAny, type PackedAny } from '../envoy/protojson.js';
import { ADS_ORDER, ResourceTypeUrl } from '../envoy/types.js';
import { resourceName, type Resource, type Snapshot, type SnapshotCache } from './cache.js';
import type { DiscoveryRequest, DiscoveryResponse, PlainJson } from './messages.js';
import { structToJson } from './messages.js';

/**
 * State-of-the-world xDS over one ADS stream: per type URL, what was sent (version, nonce, names),
 * what Envoy accepted, and what it rejected. The rules it follows:
 * - a request whose nonce is not the last one sent for its type is stale and ignored;
 * - a request with the last nonce and no error_detail is an ACK of that response;
 * - with error_detail (or with a version other than the one sent) it is a NACK: it is recorded and
 *   the same version is not sent again, only a newer snapshot (or new subscriptions) is;
 * - at most one response per type is awaiting an ACK; changes arriving meanwhile go out after it;
 * - LDS and CDS are wildcard subscriptions (empty names or `*`), RDS and EDS get what was named;
 * - when a snapshot changes, types go out clusters, endpoints, listeners, routes.
 */

export interface NodeInfo {
  id: string;
  cluster: string;
  metadata: { [k: string]: PlainJson };
  userAgent: string;
}

export interface AckEvent { node: NodeInfo; typeUrl: string; version: string }

export interface NackEvent {
  node: NodeInfo;
  typeUrl: string;
  /** The version Envoy rejected. */
  version: string;
  /** The version Envoy keeps running (its last accepted one; empty before any). */
  acceptedVersion: string;
  message: string;
  code: number;
}

export interface EncodeFailure { node: NodeInfo; typeUrl: string; version: string; message: string }

export interface StreamHooks {
  write(response: DiscoveryResponse): void;
  /**
   * A stream's node became known (its first request). Returns the snapshot-cache key this stream
   * is served from (the node id when unset). It is called before any snapshot is looked up, so a
   * control plane can admit the node and build its snapshot first; throwing refuses the stream.
   */
  admit?(node: NodeInfo): string;
  onAck(e: AckEvent): void;
  onNack(e: NackEvent): void;
  /** A snapshot resource could not be encoded: nothing is sent for that type until a new snapshot. */
  onEncodeFailure(e: EncodeFailure): void;
  nextNonce(): string;
  controlPlaneId: string;
}

export interface TypeStatus {
  typeUrl: string;
  /** `'*'` for a wildcard subscription. */
  subscribed: string[] | '*';
  sentVersion: string;
  sentNonce: string;
  ackedVersion: string;
  /** Last version Envoy rejected, while no newer version has been accepted. */
  nackedVersion?: string;
  awaitingAck: boolean;
  responses: number;
}

const TYPE_NAME: Readonly<Record<string, string>> = {
  [ResourceTypeUrl.cluster]: 'envoy.config.cluster.v3.Cluster',
  [ResourceTypeUrl.endpoint]: 'envoy.config.endpoint.v3.ClusterLoadAssignment',
  [ResourceTypeUrl.listener]: 'envoy.config.listener.v3.Listener',
  [ResourceTypeUrl.route]: 'envoy.config.route.v3.RouteConfiguration',
};

function isServedType(t: string): t is ResourceTypeUrl {
  return t in TYPE_NAME;
}

const WILDCARD_TYPES = new Set<string>([ResourceTypeUrl.listener, ResourceTypeUrl.cluster]);

/** Resources are frozen in snapshots, so an encoding can be reused for as long as they live. */
const encoded = new WeakMap<Resource, PackedAny>();

function encode(typeUrl: ResourceTypeUrl, r: Resource): PackedAny {
  let a = encoded.get(r);
  if (!a) {
    a = packAny(r, TYPE_NAME[typeUrl]);
    encoded.set(r, a);
  }
  return a;
}

class TypeState {
  /** null = wildcard. */
  names: Set<string> | null = null;
  sentNames: Set<string> | null = null;
  sentVersion = '';
  sentNonce = '';
  ackedVersion = '';
  nackedVersion: string | undefined;
  /** Snapshot version that failed to encode, so it is not retried on every request. */
  brokenVersion: string | undefined;
  awaitingAck = false;
  responses = 0;
}

function sameNames(a: Set<string> | null, b: Set<string> | null): boolean {
  if (a === null || b === null) return a === b;
  if (a.size !== b.size) return false;
  for (const n of a) if (!b.has(n)) return false;
  return true;
}

export class AdsStreamState {
  private readonly types = new Map<string, TypeState>();
  private node: NodeInfo | undefined;
  private key: string | undefined;
  private unwatch: (() => void) | undefined;
  private closed = false;

  constructor(private readonly cache: SnapshotCache, private readonly hooks: StreamHooks) {}

  get nodeInfo(): NodeInfo | undefined { return this.node; }
  /** The snapshot-cache key the stream is served from, once admitted. */
  get cacheKey(): string | undefined { return this.key; }

  /** Handles one DiscoveryRequest from Envoy. */
  handle(req: DiscoveryRequest): void {
    if (this.closed) return;
    if (!this.node) this.identify(req);
    const typeUrl = req.typeUrl;
    if (!isServedType(typeUrl)) return; // e.g. SDS: not part of Tollgate's config; Envoy asked for nothing we have
    let st = this.types.get(typeUrl);
    if (!st) this.types.set(typeUrl, (st = new TypeState()));
    const names = WILDCARD_TYPES.has(typeUrl) && (req.resourceNames.length === 0 || req.resourceNames.includes('*'))
      ? null
      : new Set(req.resourceNames);

    if (req.responseNonce === '') {
      // First request for this type on this stream (or Envoy re-subscribing): answer with what we have.
      st.names = names;
      st.awaitingAck = false;
      this.send(typeUrl, st);
      return;
    }
    if (req.responseNonce !== st.sentNonce) return; // stale: a newer response is on its way to Envoy

    st.awaitingAck = false;
    st.names = names;
    const node = this.node as NodeInfo;
    if (req.errorDetail || req.versionInfo !== st.sentVersion) {
      st.nackedVersion = st.sentVersion;
      this.hooks.onNack({
        node, typeUrl, version: st.sentVersion, acceptedVersion: req.versionInfo,
        message: req.errorDetail?.message || `Envoy answered version "${req.versionInfo}" to "${st.sentVersion}" without error detail`,
        code: req.errorDetail?.code ?? 0,
      });
    } else {
      st.ackedVersion = req.versionInfo;
      st.nackedVersion = undefined;
      this.hooks.onAck({ node, typeUrl, version: req.versionInfo });
    }
    const snap = this.snapshot();
    if (snap && (snap.version !== st.sentVersion || !sameNames(st.names, st.sentNames))) this.send(typeUrl, st);
  }

  /** The cache changed for this node: push every subscribed type that is behind, in ADS order. */
  onSnapshot(): void {
    if (this.closed) return;
    const snap = this.snapshot();
    if (!snap) return;
    for (const t of ADS_ORDER) {
      const st = this.types.get(t);
      if (st && !st.awaitingAck && st.sentVersion !== snap.version) this.send(t, st);
    }
  }

  status(): TypeStatus[] {
    return ADS_ORDER.filter((t) => this.types.has(t)).map((t) => {
      const st = this.types.get(t) as TypeState;
      const s: TypeStatus = {
        typeUrl: t,
        subscribed: st.names === null ? '*' : [...st.names].sort(),
        sentVersion: st.sentVersion,
        sentNonce: st.sentNonce,
        ackedVersion: st.ackedVersion,
        awaitingAck: st.awaitingAck,
        responses: st.responses,
      };
      if (st.nackedVersion !== undefined) s.nackedVersion = st.nackedVersion;
      return s;
    });
  }

  close(): void {
    this.closed = true;
    this.unwatch?.();
    this.unwatch = undefined;
  }

  private identify(req: DiscoveryRequest): void {
    const n = req.node;
    const node: NodeInfo = {
      id: n?.id ?? '',
      cluster: n?.cluster ?? '',
      metadata: structToJson(n?.metadata),
      userAgent: n?.userAgentName ?? '',
    };
    // Admission first: a refused node never gets a key, so it never sees or touches a snapshot.
    const key = this.hooks.admit ? this.hooks.admit(node) : node.id;
    this.node = node;
    this.key = key;
    this.unwatch = this.cache.watch(key, () => this.onSnapshot());
  }

  private snapshot(): Snapshot | undefined {
    return this.key !== undefined ? this.cache.getSnapshot(this.key) : undefined;
  }

  private send(typeUrl: ResourceTypeUrl, st: TypeState): void {
    const snap = this.snapshot();
    if (!snap) return; // nothing for this node yet; the cache watch sends once there is
    if (st.brokenVersion === snap.version) return;
    const all = snap.resources[typeUrl] ?? [];
    const wanted = st.names;
    const chosen = wanted === null ? all : all.filter((r) => wanted.has(resourceName(typeUrl, r)));
    let resources: PackedAny[];
    try {
      resources = chosen.map((r) => encode(typeUrl, r));
    } catch (e) {
      st.brokenVersion = snap.version;
      this.hooks.onEncodeFailure({ node: this.node as NodeInfo, typeUrl, version: snap.version, message: e instanceof Error ? e.message : String(e) });
      return;
    }
    const nonce = this.hooks.nextNonce();
    st.sentVersion = snap.version;
    st.sentNonce = nonce;
    st.sentNames = wanted === null ? null : new Set(wanted);
    st.awaitingAck = true;
    st.responses++;
    this.hooks.write({ versionInfo: snap.version, resources, typeUrl, nonce, controlPlane: { identifier: this.hooks.controlPlaneId } });
  }
}
