import { isObject } from '../util/object.js';

/**
 * Readers for Envoy's admin `/config_dump` (snake_case proto JSON), so tests and `tollgate status`
 * can ask "which version of which resource is live" without walking the dump by hand.
 */

type Obj = Record<string, unknown>;

function list(v: unknown): Obj[] {
  return Array.isArray(v) ? v.filter(isObject) : [];
}

/** The dump section whose `@type` ends with `suffix`, e.g. `ListenersConfigDump`. */
export function dumpSection(dump: unknown, suffix: string): Obj | undefined {
  if (!isObject(dump)) return undefined;
  return list(dump.configs).find((c) => typeof c['@type'] === 'string' && c['@type'].endsWith('.' + suffix));
}

/**
 * The version of the last LDS / CDS response Envoy accepted (`ListenersConfigDump.version_info`).
 * Prefer it to a listener's own `version_info`: when an update only changes filter chains, Envoy
 * swaps them in place and the listener keeps reporting the version it was created with.
 */
export function acceptedVersion(dump: unknown, kind: 'listeners' | 'clusters'): string {
  const v = dumpSection(dump, kind === 'listeners' ? 'ListenersConfigDump' : 'ClustersConfigDump')?.version_info;
  return typeof v === 'string' ? v : '';
}

export interface DumpedResource {
  name: string;
  /** The version this resource was created at (see acceptedVersion about in-place updates). */
  versionInfo: string;
  /** The resource itself (listener / route_config / cluster), as Envoy reports it. */
  config: Obj;
  /** Set when Envoy rejected a later update of this resource and kept this one. */
  errorState?: Obj;
}

function entry(name: string, versionInfo: unknown, config: unknown, errorState: unknown): DumpedResource | undefined {
  if (!isObject(config)) return undefined;
  const r: DumpedResource = { name, versionInfo: typeof versionInfo === 'string' ? versionInfo : '', config };
  if (isObject(errorState)) r.errorState = errorState;
  return r;
}

/** Listeners received over LDS that are active (warmed and serving). */
export function dynamicListeners(dump: unknown): DumpedResource[] {
  const out: DumpedResource[] = [];
  for (const l of list(dumpSection(dump, 'ListenersConfigDump')?.dynamic_listeners)) {
    const active = isObject(l.active_state) ? l.active_state : undefined;
    const e = active && entry(String(l.name ?? ''), active.version_info, active.listener, l.error_state);
    if (e) out.push(e);
  }
  return out;
}

/** Listeners that failed validation with no earlier version to keep (only `error_state`). */
export function listenerErrors(dump: unknown): Array<{ name: string; errorState: Obj }> {
  return list(dumpSection(dump, 'ListenersConfigDump')?.dynamic_listeners)
    .filter((l) => isObject(l.error_state))
    .map((l) => ({ name: String(l.name ?? ''), errorState: l.error_state as Obj }));
}

/**
 * The resources of one section received over xDS: each item of `items` holds its resource under
 * `resource`, named by the resource's `nameField`.
 */
function dynamicResources(dump: unknown, section: string, items: string, resource: string, nameField = 'name'): DumpedResource[] {
  const out: DumpedResource[] = [];
  for (const item of list(dumpSection(dump, section)?.[items])) {
    const cfg = item[resource];
    const e = entry(isObject(cfg) ? String(cfg[nameField] ?? '') : '', item.version_info, cfg, item.error_state);
    if (e) out.push(e);
  }
  return out;
}

export function dynamicRouteConfigs(dump: unknown): DumpedResource[] {
  return dynamicResources(dump, 'RoutesConfigDump', 'dynamic_route_configs', 'route_config');
}

export function dynamicClusters(dump: unknown): DumpedResource[] {
  return dynamicResources(dump, 'ClustersConfigDump', 'dynamic_active_clusters', 'cluster');
}

/** Endpoint assignments received over EDS (present when dumped with `include_eds`). */
export function dynamicEndpoints(dump: unknown): DumpedResource[] {
  return dynamicResources(dump, 'EndpointsConfigDump', 'dynamic_endpoint_configs', 'endpoint_config', 'cluster_name');
}

/** The typed_config of an HTTP filter in a dumped listener's first HTTP connection manager. */
export function httpFilterConfig(listener: Obj, filterName: string): Obj | undefined {
  for (const chain of list(listener.filter_chains)) {
    for (const f of list(chain.filters)) {
      const hcm = f.typed_config;
      if (!isObject(hcm)) continue;
      const hf = list(hcm.http_filters).find((h) => h.name === filterName);
      if (hf && isObject(hf.typed_config)) return hf.typed_config;
    }
  }
  return undefined;
}
