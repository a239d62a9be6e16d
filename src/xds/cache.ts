import { createHash } from 'node:crypto';
import type { JsonObject, JsonValue } from '../envoy/protojson.js';
import type { EnvoyResources } from '../envoy/resources.js';
import { ADS_ORDER, ResourceTypeUrl } from '../envoy/types.js';

/**
 * What each Envoy node should run, kept apart from the ADS server that delivers it (the same split
 * go-control-plane makes): the control plane computes snapshots, the server only reacts to them.
 * Pure and synchronous.
 */

/** One xDS resource as proto3 JSON (listener, route configuration, cluster, load assignment). */
export type Resource = JsonObject;

export interface Snapshot {
  /** Changes whenever any resource changes; Envoy only gets a push when it does. */
  readonly version: string;
  readonly resources: Readonly<Partial<Record<ResourceTypeUrl, readonly Resource[]>>>;
}

/** The key a resource is subscribed by: `cluster_name` for load assignments, `name` otherwise. */
export function resourceName(typeUrl: ResourceTypeUrl, r: Resource): string {
  const v = typeUrl === ResourceTypeUrl.endpoint ? r.cluster_name ?? r.clusterName : r.name;
  return typeof v === 'string' ? v : '';
}

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const e of Object.values(v)) deepFreeze(e);
  }
  return v;
}

function byType(r: EnvoyResources): Record<ResourceTypeUrl, Resource[]> {
  return {
    [ResourceTypeUrl.cluster]: r.clusters,
    [ResourceTypeUrl.endpoint]: r.endpoints,
    [ResourceTypeUrl.listener]: r.listeners,
    [ResourceTypeUrl.route]: r.routes,
  };
}

/** A version derived from content: identical resources give the same version, so no useless push. */
export function contentVersion(resources: EnvoyResources): string {
  const h = createHash('sha256');
  for (const t of ADS_ORDER) h.update(t).update('\0').update(JSON.stringify(byType(resources)[t])).update('\0');
  return h.digest('hex').slice(0, 16);
}

/**
 * An immutable snapshot. Every resource needs a unique, non-empty name within its type; the
 * resources are deep-copied and frozen so a later edit by the caller cannot change what was served.
 */
export function makeSnapshot(resources: EnvoyResources, version = contentVersion(resources)): Snapshot {
  if (!version) throw new Error('snapshot version must be a non-empty string');
  const typed = byType(structuredClone(resources));
  for (const t of ADS_ORDER) {
    const seen = new Set<string>();
    for (const r of typed[t]) {
      const name = resourceName(t, r);
      if (!name) throw new Error(`snapshot ${version}: a ${t.split('.').pop()} has no name`);
      if (seen.has(name)) throw new Error(`snapshot ${version}: duplicate ${t.split('.').pop()} "${name}"`);
      seen.add(name);
    }
  }
  return deepFreeze({ version, resources: typed });
}

function walk(v: JsonValue, visit: (key: string, value: JsonValue) => void): void {
  if (Array.isArray(v)) for (const e of v) walk(e, visit);
  else if (typeof v === 'object' && v !== null) {
    for (const [k, e] of Object.entries(v)) {
      visit(k, e);
      walk(e, visit);
    }
  }
}

/**
 * References that would leave Envoy waiting or routing nowhere: an RDS name with no route
 * configuration, a route to an unknown cluster, an EDS cluster with no load assignment.
 */
export function checkConsistency(s: Snapshot): string[] {
  const names = (t: ResourceTypeUrl): Set<string> => new Set((s.resources[t] ?? []).map((r) => resourceName(t, r)));
  const routes = names(ResourceTypeUrl.route);
  const clusters = names(ResourceTypeUrl.cluster);
  const endpoints = names(ResourceTypeUrl.endpoint);
  const problems: string[] = [];
  for (const l of s.resources[ResourceTypeUrl.listener] ?? []) {
    walk(l, (k, v) => {
      if ((k === 'route_config_name' || k === 'routeConfigName') && typeof v === 'string' && !routes.has(v)) {
        problems.push(`listener "${l.name}" uses route configuration "${v}", which is not in the snapshot`);
      }
    });
  }
  const routeSources = [...(s.resources[ResourceTypeUrl.route] ?? []), ...(s.resources[ResourceTypeUrl.listener] ?? [])];
  for (const r of routeSources) {
    walk(r, (k, v) => {
      if (k === 'route' && typeof v === 'object' && v !== null && !Array.isArray(v) && typeof v.cluster === 'string' && !clusters.has(v.cluster)) {
        problems.push(`"${r.name}" routes to cluster "${v.cluster}", which is not in the snapshot`);
      }
    });
  }
  for (const c of s.resources[ResourceTypeUrl.cluster] ?? []) {
    if (c.type !== 'EDS') continue;
    const eds = c.eds_cluster_config;
    const serviceName = typeof eds === 'object' && eds !== null && !Array.isArray(eds) && typeof eds.service_name === 'string' ? eds.service_name : '';
    const wanted = serviceName || String(c.name);
    if (!endpoints.has(wanted)) problems.push(`EDS cluster "${c.name}" has no load assignment "${wanted}" in the snapshot`);
  }
  return problems;
}

export type SnapshotWatcher = (snapshot: Snapshot | undefined) => void;

export class SnapshotCache {
  private readonly snapshots = new Map<string, Snapshot>();
  private defaultSnapshot: Snapshot | undefined;
  private readonly watchers = new Map<string, Set<SnapshotWatcher>>();

  /** The snapshot for nodeId: its own, else the default, else none. */
  getSnapshot(nodeId: string): Snapshot | undefined {
    return this.snapshots.get(nodeId) ?? this.defaultSnapshot;
  }

  hasOwnSnapshot(nodeId: string): boolean {
    return this.snapshots.has(nodeId);
  }

  /** Node ids with a snapshot of their own. */
  nodeIds(): string[] {
    return [...this.snapshots.keys()];
  }

  setSnapshot(nodeId: string, snapshot: Snapshot): void {
    const before = this.getSnapshot(nodeId);
    this.snapshots.set(nodeId, snapshot);
    if (before !== snapshot) this.notify([nodeId]);
  }

  clearSnapshot(nodeId: string): void {
    const before = this.getSnapshot(nodeId);
    this.snapshots.delete(nodeId);
    if (before !== this.getSnapshot(nodeId)) this.notify([nodeId]);
  }

  /** For nodes that have no snapshot of their own. */
  setDefaultSnapshot(snapshot: Snapshot | undefined): void {
    if (this.defaultSnapshot === snapshot) return;
    this.defaultSnapshot = snapshot;
    this.notify([...this.watchers.keys()].filter((n) => !this.snapshots.has(n)));
  }

  getDefaultSnapshot(): Snapshot | undefined {
    return this.defaultSnapshot;
  }

  /** Calls `watcher` with the node's effective snapshot whenever it changes; returns an unsubscribe. */
  watch(nodeId: string, watcher: SnapshotWatcher): () => void {
    let set = this.watchers.get(nodeId);
    if (!set) this.watchers.set(nodeId, (set = new Set()));
    set.add(watcher);
    return () => {
      const s = this.watchers.get(nodeId);
      s?.delete(watcher);
      if (s?.size === 0) this.watchers.delete(nodeId);
    };
  }

  private notify(nodeIds: string[]): void {
    const errors: unknown[] = [];
    for (const id of nodeIds) {
      const snap = this.getSnapshot(id);
      for (const w of [...(this.watchers.get(id) ?? [])]) {
        try {
          w(snap);
        } catch (e) {
          errors.push(e);
        }
      }
    }
    // One failing watcher must not keep the others on stale config; its error still surfaces.
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, 'snapshot watchers failed');
  }
}
