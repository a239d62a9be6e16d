import { rename, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import type { JsonObject } from './protojson.js';
import { atType, EnvoyType } from './types.js';
import {
  http2ProtocolOptions, MESH_CA_SECRET, meshTlsTransportSocket, sidecarResources, WORKLOAD_CERT_SECRET, type HostPort, type SidecarSpec,
} from './resources.js';

export const XDS_CLUSTER = 'tollgate_xds';

/** Identifies the sidecar to the control plane (`node.metadata`), next to `node.id`. */
export interface NodeMetadata {
  server: string;
  namespace: string;
  pod?: string;
  [key: string]: string | undefined;
}

export interface AdsBootstrapOptions {
  nodeId: string;
  /** Envoy's service cluster (`node.cluster`), e.g. `<namespace>/<server>`. */
  cluster: string;
  metadata: NodeMetadata;
  adminPort: number;
  /** Admin listens on loopback unless told otherwise: it can change Envoy's state. */
  adminHost?: string;
  /** The control plane's ADS endpoint. */
  xds: HostPort;
  /**
   * The workload's identity files (paths as Envoy sees them) and the control plane's SPIFFE ID:
   * Envoy connects to ADS over mTLS and accepts no other server. The same secrets are what
   * xDS-served clusters (authz over mTLS) refer to by name.
   */
  tls?: WorkloadTls;
  /** Client connections of the whole process; default DEFAULT_MAX_DOWNSTREAM_CONNECTIONS. */
  maxDownstreamConnections?: number;
}

/**
 * Process-wide cap on client connections (the overload manager's
 * `envoy.resource_monitors.global_downstream_max_connections`): past it Envoy closes a new
 * connection as soon as it accepts it, so a connection flood cannot use up the process's file
 * descriptors (and with them every upstream and xDS connection). Above the MCP listener's own
 * limit (DEFAULT_DOWNSTREAM_LIMITS.maxConnections) to leave room for the health listener, and with
 * one upstream connection per client still far below the usual descriptor limits. Admin does not
 * count (`ignore_global_conn_limit`), so it keeps answering during a flood.
 */
export const DEFAULT_MAX_DOWNSTREAM_CONNECTIONS = 5000;
export const GLOBAL_CONNECTIONS_MONITOR = 'envoy.resource_monitors.global_downstream_max_connections';

export interface WorkloadTls {
  cert: string;
  key: string;
  ca: string;
  /** SPIFFE ID the control plane's certificate must carry. */
  controlPlaneIdentity: string;
  /**
   * A file-based SDS source for the certificate (certSdsFile() writes it): the xDS connection then
   * follows the files as they are renewed. Unset: read once at start (fine for certificates
   * that outlive the process, as `tollgate up` issues them).
   */
  sdsFile?: string;
}

/** Name of the SDS document `tollgate cert request` writes next to the certificate files. */
export const CERT_SDS_FILE = 'envoy-cert-sds.json';

/** The SDS document naming the certificate files, for WorkloadTls.sdsFile; written by renaming. */
export async function writeCertSdsFile(path: string, files: { cert: string; key: string }): Promise<void> {
  const doc = { resources: [{ '@type': atType(EnvoyType.tlsSecret), name: WORKLOAD_CERT_SECRET, tls_certificate: { certificate_chain: { filename: files.cert }, private_key: { filename: files.key } } }] };
  await writeFile(`${path}.tmp`, JSON.stringify(doc, null, 2) + '\n', { mode: 0o644 });
  await rename(`${path}.tmp`, path);
}

/** The workload certificate and the mesh CA as static secrets: Envoy reads the files once, at start. */
function workloadSecrets(tls: Omit<WorkloadTls, 'controlPlaneIdentity'>): JsonObject[] {
  return [
    { name: WORKLOAD_CERT_SECRET, tls_certificate: { certificate_chain: { filename: tls.cert }, private_key: { filename: tls.key } } },
    { name: MESH_CA_SECRET, validation_context: { trusted_ca: { filename: tls.ca } } },
  ];
}

function adminConfig(port: number, host = '127.0.0.1'): JsonObject {
  return { address: { socket_address: { address: host, port_value: port } }, ignore_global_conn_limit: true };
}

function overloadManager(maxConnections = DEFAULT_MAX_DOWNSTREAM_CONNECTIONS): JsonObject {
  if (!(Number.isInteger(maxConnections) && maxConnections > 0)) throw new Error(`maxDownstreamConnections ${maxConnections} must be a positive integer`);
  return {
    resource_monitors: [{
      name: GLOBAL_CONNECTIONS_MONITOR,
      typed_config: { '@type': atType(EnvoyType.downstreamConnections), max_active_downstream_connections: maxConnections },
    }],
  };
}

function nodeConfig(id: string, cluster: string, metadata: NodeMetadata): JsonObject {
  const md: JsonObject = {};
  for (const [k, v] of Object.entries(metadata)) if (v !== undefined) md[k] = v;
  return { id, cluster, metadata: md };
}

function xdsCluster(xds: HostPort, tls: WorkloadTls | undefined): JsonObject {
  const ip = isIP(xds.host) !== 0;
  return {
    ...(tls ? { transport_socket: meshTlsTransportSocket(tls.controlPlaneIdentity, ip ? undefined : xds.host, tls.sdsFile) } : {}),
    name: XDS_CLUSTER,
    type: ip ? 'STATIC' : 'STRICT_DNS',
    ...(ip ? {} : { dns_lookup_family: 'V4_PREFERRED' }),
    connect_timeout: '1s',
    load_assignment: {
      cluster_name: XDS_CLUSTER,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: xds.host, port_value: xds.port } } } }] }],
    },
    typed_extension_protocol_options: http2ProtocolOptions(),
    // A control plane that vanished without a FIN (node lost, netsplit) is noticed and reconnected.
    upstream_connection_options: { tcp_keepalive: {} },
  };
}

/**
 * A bootstrap whose only static resource is the control-plane cluster: listeners and clusters come
 * over ADS (routes and endpoints follow them, also over ADS).
 */
export function adsBootstrap(o: AdsBootstrapOptions): JsonObject {
  const overAds: JsonObject = { ads: {}, resource_api_version: 'V3' };
  return {
    node: nodeConfig(o.nodeId, o.cluster, o.metadata),
    admin: adminConfig(o.adminPort, o.adminHost),
    overload_manager: overloadManager(o.maxDownstreamConnections),
    static_resources: { clusters: [xdsCluster(o.xds, o.tls)], ...(o.tls ? { secrets: workloadSecrets(o.tls) } : {}) },
    dynamic_resources: {
      ads_config: {
        api_type: 'GRPC',
        transport_api_version: 'V3',
        grpc_services: [{ envoy_grpc: { cluster_name: XDS_CLUSTER } }],
        set_node_on_first_message_only: true,
      },
      lds_config: overAds,
      cds_config: overAds,
    },
  };
}

/**
 * The same sidecar with everything inline: no control plane needed (offline inject, fallback).
 * The same listener as over ADS, and the same process-wide connection cap as adsBootstrap.
 */
export function staticBootstrap(
  spec: SidecarSpec, adminPort: number, adminHost?: string, tls?: Omit<WorkloadTls, 'controlPlaneIdentity'>, maxDownstreamConnections?: number,
): JsonObject {
  const r = sidecarResources(spec, 'static');
  return {
    node: nodeConfig(spec.nodeId, `${spec.namespace}/${spec.server}`, { server: spec.server, namespace: spec.namespace }),
    admin: adminConfig(adminPort, adminHost),
    overload_manager: overloadManager(maxDownstreamConnections),
    static_resources: { listeners: r.listeners, clusters: r.clusters, ...(tls ? { secrets: workloadSecrets(tls) } : {}) },
  };
}

/** Envoy reads JSON as YAML, so the file is plain JSON (`.json` or `.yaml` both work). */
export async function writeBootstrap(path: string, config: JsonObject): Promise<void> {
  await writeFile(path, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
}
