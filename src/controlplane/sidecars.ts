import type { SidecarSpec, SidecarTracing } from '../envoy/resources.js';
import { sidecarResources } from '../envoy/resources.js';
import type { NodeInfo } from '../xds/protocol.js';
import { NodeRefused, type PeerIdentity } from '../xds/server.js';
import { makeSnapshot, type SnapshotCache } from '../xds/cache.js';
import type { SidecarRegistration } from './registrations.js';

/** What the control plane knows that applies to every sidecar. */
export interface SidecarDefaults {
  /** Where a sidecar reaches authz when its registration names none (a shared authz Service). */
  authz: { host: string; port: number };
  authzTimeoutMs: number;
  maxRequestBytes: number;
  /** Token issuer announced in each server's RFC 9728 metadata. */
  issuer: string;
  extProc: boolean;
  /** Address the MCP listener binds: 0.0.0.0 in a pod, 127.0.0.1 on a workstation. */
  listenHost: string;
  /** Envoy's OpenTelemetry tracer for every sidecar (`controlplane serve --otel-collector`); unset: off. */
  tracing?: SidecarTracing;
}

/**
 * Pure: the sidecar for a registration. Everything comes from the registration and the defaults,
 * nothing from the connecting Envoy's node metadata (which any client can write).
 */
export function specFromRegistration(r: SidecarRegistration, d: SidecarDefaults): SidecarSpec {
  const authz = r.authz ?? d.authz;
  return {
    nodeId: r.nodeId, server: r.server, namespace: r.namespace,
    listen: r.listen, mcpPath: r.mcpPath, upstream: r.upstream,
    authz: { ...authz, timeoutMs: d.authzTimeoutMs, ...(r.authzIdentity ? { tlsIdentity: r.authzIdentity } : {}) },
    maxRequestBytes: d.maxRequestBytes,
    resourceMetadata: {
      resource: r.resourceUrl ?? `http://${r.server}.${r.namespace}.svc:${r.listen.port}${r.mcpPath}`,
      authorization_servers: [d.issuer], bearer_methods_supported: ['header'],
      resource_name: `MCP server "${r.server}" governed by Tollgate`,
    },
    extProc: d.extProc,
    ...(d.tracing ? { tracing: d.tracing } : {}),
  };
}

/** Registrations indexed for admission: by node id, and each identity's node ids (for messages). */
export interface RegistrationIndex {
  byNode: ReadonlyMap<string, SidecarRegistration>;
  nodesOf: ReadonlyMap<string, readonly string[]>;
}

export function indexRegistrations(list: readonly SidecarRegistration[]): RegistrationIndex {
  const byNode = new Map<string, SidecarRegistration>();
  const nodesOf = new Map<string, string[]>();
  for (const r of list) {
    byNode.set(r.nodeId, r);
    const nodes = nodesOf.get(r.identity) ?? [];
    nodes.push(r.nodeId);
    nodesOf.set(r.identity, nodes);
  }
  return { byNode, nodesOf };
}

function listNodes(nodes: readonly string[]): string {
  const shown = nodes.slice(0, 3).map((n) => `"${n}"`).join(', ');
  return nodes.length > 3 ? `${shown} and ${nodes.length - 3} more` : shown;
}

/**
 * Pure: whether a node with this verified identity may be served, and from which registration (the
 * one of its node id, which must belong to its certificate's identity — and, for pod-bound
 * registrations, name the certificate's pod). Its node id is then its cache key, so one workload
 * can never write another's snapshot. Throws NodeRefused.
 */
export function admitNode(node: NodeInfo, peer: PeerIdentity | null, regs: RegistrationIndex): SidecarRegistration {
  if (!peer) throw new NodeRefused('no_certificate', 'a client certificate issued by the mesh CA is required');
  const reg = regs.byNode.get(node.id);
  if (!reg || reg.identity !== peer.spiffeId) {
    const own = regs.nodesOf.get(peer.spiffeId);
    if (!own?.length) throw new NodeRefused('not_registered', `no sidecar is registered for ${peer.spiffeId} (node id "${node.id}")`);
    const which = own.length === 1 ? `node ${listNodes(own)}` : `nodes ${listNodes(own)}`;
    throw new NodeRefused('node_id_mismatch', `node id "${node.id}" does not match the certificate's identity ${peer.spiffeId}, which is registered as ${which}`);
  }
  if (reg.podBound && peer.commonName !== node.id) {
    throw new NodeRefused('node_id_mismatch', `node id "${node.id}" belongs to another pod: the certificate was issued to "${peer.commonName ?? '(no CN)'}"`);
  }
  return reg;
}

export interface SidecarRegistryOptions {
  /** How long a sidecar's snapshot is kept after its last stream ends (Envoy reconnecting). */
  forgetAfterMs?: number;
  onError?: (key: string, message: string) => void;
  onForget?: (key: string) => void;
  /** A registration was withdrawn while its sidecar may still be connected: end its streams. */
  onWithdraw?: (key: string) => void;
}

/**
 * One snapshot per connected, registered node. A snapshot is built when the node's first stream
 * is admitted, rebuilt when the defaults or its registration change, dropped once no stream of
 * that node has been open for `forgetAfterMs`, and dropped at once (streams ended) when its
 * registration is withdrawn.
 */
export class SidecarRegistry {
  private registrations: RegistrationIndex = indexRegistrations([]);
  /** Open streams per cache key. */
  private readonly open = new Map<string, number>();
  private readonly forgetTimers = new Map<string, NodeJS.Timeout>();
  /** Keys admitted and not yet forgotten (a key whose render failed has no snapshot but is here). */
  private readonly served = new Set<string>();
  readonly errors = new Map<string, string>();

  constructor(private readonly cache: SnapshotCache, private defaults: SidecarDefaults, private readonly opts: SidecarRegistryOptions = {}) {}

  get current(): SidecarDefaults { return this.defaults; }

  /** Node ids with a snapshot (connected, or disconnected within the grace period). */
  get known(): string[] { return [...this.served]; }

  /** For AdsServer's admit hook. */
  readonly admit = (node: NodeInfo, peer: PeerIdentity | null): string => {
    const reg = admitNode(node, peer, this.registrations);
    const key = reg.nodeId;
    const t = this.forgetTimers.get(key);
    if (t) { clearTimeout(t); this.forgetTimers.delete(key); }
    this.open.set(key, (this.open.get(key) ?? 0) + 1);
    this.served.add(key);
    if (!this.cache.hasOwnSnapshot(key)) this.render(reg);
    return key;
  };

  /** For AdsServer's onStreamEnd hook. */
  readonly streamEnded = (key: string): void => {
    const n = (this.open.get(key) ?? 1) - 1;
    if (n > 0) { this.open.set(key, n); return; }
    this.open.delete(key);
    const timer = setTimeout(() => this.forget(key), this.opts.forgetAfterMs ?? 60_000);
    timer.unref();
    this.forgetTimers.set(key, timer);
  };

  /** Registrations in force now; node ids must be unique. */
  get registered(): SidecarRegistration[] { return [...this.registrations.byNode.values()]; }

  setRegistrations(list: readonly SidecarRegistration[]): void {
    const before = this.registrations;
    this.registrations = indexRegistrations(list);
    for (const key of this.known) {
      const reg = this.registrations.byNode.get(key);
      if (reg && reg.identity === before.byNode.get(key)?.identity) this.render(reg);
      else this.withdraw(key);
    }
  }

  update(patch: Partial<SidecarDefaults>): void {
    this.defaults = { ...this.defaults, ...patch };
    for (const key of this.known) {
      const reg = this.registrations.byNode.get(key);
      if (reg) this.render(reg);
    }
  }

  /** Cancels pending forget timers (server stopping). */
  close(): void {
    for (const t of this.forgetTimers.values()) clearTimeout(t);
    this.forgetTimers.clear();
  }

  /**
   * Nothing more is served to that node, and it is forgotten now: its pod is gone (or its node id
   * now belongs to another identity), so there is nothing to keep for a reconnect.
   */
  private withdraw(key: string): void {
    const t = this.forgetTimers.get(key);
    if (t) { clearTimeout(t); this.forgetTimers.delete(key); }
    this.served.delete(key);
    this.errors.delete(key);
    this.cache.clearSnapshot(key);
    if (this.open.has(key)) this.opts.onWithdraw?.(key);
    this.opts.onForget?.(key);
  }

  private forget(key: string): void {
    this.forgetTimers.delete(key);
    if (this.open.has(key)) return;
    if (!this.served.delete(key)) return; // already withdrawn
    this.cache.clearSnapshot(key);
    this.errors.delete(key);
    this.opts.onForget?.(key);
  }

  private render(reg: SidecarRegistration): void {
    try {
      this.cache.setSnapshot(reg.nodeId, makeSnapshot(sidecarResources(specFromRegistration(reg, this.defaults), 'ads')));
      this.errors.delete(reg.nodeId);
    } catch (e) {
      // No snapshot: that Envoy stays un-ready and serves nothing, rather than serving unguarded.
      const message = (e as Error).message;
      this.errors.set(reg.nodeId, message);
      this.opts.onError?.(reg.nodeId, message);
    }
  }
}
