/** Full names of the Envoy messages Tollgate writes into configuration (`"@type"` / type URLs). */
export const EnvoyType = {
  listener: 'envoy.config.listener.v3.Listener',
  routeConfiguration: 'envoy.config.route.v3.RouteConfiguration',
  cluster: 'envoy.config.cluster.v3.Cluster',
  clusterLoadAssignment: 'envoy.config.endpoint.v3.ClusterLoadAssignment',
  httpConnectionManager: 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  connectionLimit: 'envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit',
  downstreamConnections: 'envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig',
  extAuthz: 'envoy.extensions.filters.http.ext_authz.v3.ExtAuthz',
  extAuthzPerRoute: 'envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute',
  extProc: 'envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor',
  extProcPerRoute: 'envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute',
  router: 'envoy.extensions.filters.http.router.v3.Router',
  httpProtocolOptions: 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
  upstreamTlsContext: 'envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
  tlsSecret: 'envoy.extensions.transport_sockets.tls.v3.Secret',
  openTelemetryConfig: 'envoy.config.trace.v3.OpenTelemetryConfig',
} as const;

export const TYPE_URL_PREFIX = 'type.googleapis.com/' as const;

/** `"@type"` value for one of EnvoyType. */
export function atType(name: (typeof EnvoyType)[keyof typeof EnvoyType]): string {
  return TYPE_URL_PREFIX + name;
}

/** The xDS resource types the ADS server serves, by type URL. */
export const ResourceTypeUrl = {
  cluster: `${TYPE_URL_PREFIX}${EnvoyType.cluster}`,
  endpoint: `${TYPE_URL_PREFIX}${EnvoyType.clusterLoadAssignment}`,
  listener: `${TYPE_URL_PREFIX}${EnvoyType.listener}`,
  route: `${TYPE_URL_PREFIX}${EnvoyType.routeConfiguration}`,
} as const;

export type ResourceTypeUrl = (typeof ResourceTypeUrl)[keyof typeof ResourceTypeUrl];

/**
 * ADS push order. Envoy wants a cluster before endpoints that name it, and both before a listener
 * or route that routes to it; pushing in this order keeps every update make-before-break.
 */
export const ADS_ORDER: readonly ResourceTypeUrl[] = [
  ResourceTypeUrl.cluster, ResourceTypeUrl.endpoint, ResourceTypeUrl.listener, ResourceTypeUrl.route,
];

/** Well-known filter names; per-route configuration is keyed by them. */
export const FilterName = {
  httpConnectionManager: 'envoy.filters.network.http_connection_manager',
  connectionLimit: 'envoy.filters.network.connection_limit',
  extAuthz: 'envoy.filters.http.ext_authz',
  extProc: 'envoy.filters.http.ext_proc',
  router: 'envoy.filters.http.router',
} as const;
