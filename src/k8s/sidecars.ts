import { POINTER_KEY_ENV, serverPointerKey } from '../bundle/policy-keys.js';
import { adsBootstrap, type NodeMetadata } from '../envoy/bootstrap.js';
import type { JsonObject } from '../envoy/protojson.js';
import { connectionLimitFilter, type HostPort } from '../envoy/resources.js';
import { atType, EnvoyType, FilterName } from '../envoy/types.js';
import {
  AUTHZ_CONFIG_DIR, AUTHZ_CONFIG_PATH, AUTHZ_CONFIG_VOLUME, AUTHZ_CONTAINER, AUTHZ_STATE_DIR, AUTHZ_STATE_VOLUME,
  ENVOY_CONTAINER,
} from './annotations.js';
import type { Container, Volume } from './types.js';
import { authzNodeOptions } from '../authz/node-flags.js';
import { bootstrapTls, envoyIdentityMounts, type IdentityPlan } from './identity.js';
import { SIDECAR_NATS_DIR, SIDECAR_NATS_SECRET } from './nats-cluster.js';

const AUTHZ_NATS_VOLUME = 'tollgate-nats-authz';

/** requests / limits of one container, in Kubernetes quantity strings. */
export interface ResourceSpec {
  requests: { cpu: string; memory: string };
  limits: { cpu: string; memory: string };
}

/*
 * CPU limits are generous on purpose: a throttled sidecar adds its throttling period to every MCP
 * call's latency, which costs far more than the CPU it saves. Memory limits are tight enough that a
 * leak is caught by an OOM kill of the sidecar rather than of the node.
 */
export const DEFAULT_ENVOY_RESOURCES: ResourceSpec = { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '1', memory: '256Mi' } };
export const DEFAULT_AUTHZ_RESOURCES: ResourceSpec = { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '1', memory: '512Mi' } };

/**
 * How the sidecars join the pod. `native` (default): init containers with `restartPolicy: Always`
 * (Kubernetes 1.29+), started before and stopped after the MCP server. `containers`: ordinary
 * containers next to it, for older clusters, where nothing orders start-up or shutdown.
 */
export type SidecarMode = 'native' | 'containers';
export const SIDECAR_MODES: readonly SidecarMode[] = ['native', 'containers'];

export type AuthzPlacement =
  | { mode: 'sidecar'; port: number; configMap: string }
  | { mode: 'shared'; address: HostPort };

/** What the pod's own spec and annotations say about its sidecar: the facts a registration is built from too. */
export interface SidecarFacts {
  server: string;
  mcpPort: number;
  mcpPath: string;
  upstreamPort: number;
  authz: AuthzPlacement;
}

/** Everything decided about one pod before any container is written: its facts, and the injector's settings. */
export interface SidecarPlan extends SidecarFacts {
  namespace: string;
  /** The pod's name, or its generateName when the API server has not named it yet. */
  podName: string;
  sidecarMode: SidecarMode;
  controlPlane: HostPort;
  envoyImage: string;
  authzImage: string;
  adminPort: number;
  healthPort: number;
  envoyResources: ResourceSpec;
  authzResources: ResourceSpec;
  /** The injector's version, recorded in node metadata. */
  version: string;
  /** Workload certificate for mTLS to the control plane (k8s/identity.ts); unset: none. */
  identity?: IdentityPlan;
}

const HEALTH_LISTENER = 'tollgate_health';
const ADMIN_CLUSTER = 'tollgate_admin';

/**
 * Keys the control plane reads from `node.metadata` to build this sidecar's listener, routes and
 * clusters. Listed in docs/kubernetes.md; all values are strings.
 */
export function nodeMetadata(p: SidecarPlan): NodeMetadata {
  const authzAddress = p.authz.mode === 'sidecar' ? `127.0.0.1:${p.authz.port}` : `${p.authz.address.host}:${p.authz.address.port}`;
  return {
    server: p.server,
    namespace: p.namespace,
    pod: p.podName,
    mcp_port: String(p.mcpPort),
    mcp_path: p.mcpPath,
    upstream_host: '127.0.0.1',
    upstream_port: String(p.upstreamPort),
    authz_mode: p.authz.mode,
    authz_address: authzAddress,
    injector_version: p.version,
  };
}

export function nodeId(p: SidecarPlan): string {
  return `${p.namespace}/${p.podName}`;
}

/** The kubelet probes one connection at a time; a few more cover a slow probe and a person with curl. */
const HEALTH_MAX_CONNECTIONS = 64;

/**
 * The kubelet probes the pod IP, but Envoy's admin must stay on loopback (it can drain, quit and
 * rewrite runtime state). This static listener forwards GET /ready, and nothing else, to admin.
 */
function healthListener(healthPort: number): JsonObject {
  return {
    name: HEALTH_LISTENER,
    address: { socket_address: { address: '0.0.0.0', port_value: healthPort } },
    // Readiness keeps answering while a flood holds the MCP listener at the process-wide connection
    // cap; its own small cap keeps a flood aimed at this port from using up the descriptors instead.
    ignore_global_conn_limit: true,
    filter_chains: [{
      filters: [connectionLimitFilter(HEALTH_LISTENER, HEALTH_MAX_CONNECTIONS), {
        name: FilterName.httpConnectionManager,
        typed_config: {
          '@type': atType(EnvoyType.httpConnectionManager),
          stat_prefix: HEALTH_LISTENER,
          request_headers_timeout: '5s',
          common_http_protocol_options: { idle_timeout: '30s' },
          route_config: {
            name: HEALTH_LISTENER,
            virtual_hosts: [{
              name: 'health',
              domains: ['*'],
              routes: [
                {
                  match: { path: '/ready', headers: [{ name: ':method', string_match: { exact: 'GET' } }] },
                  route: { cluster: ADMIN_CLUSTER, timeout: '1s' },
                },
                { match: { prefix: '/' }, direct_response: { status: 404 } },
              ],
            }],
          },
          http_filters: [{ name: FilterName.router, typed_config: { '@type': atType(EnvoyType.router) } }],
        },
      }],
    }],
  };
}

function adminCluster(adminPort: number): JsonObject {
  return {
    name: ADMIN_CLUSTER,
    type: 'STATIC',
    connect_timeout: '0.250s',
    load_assignment: {
      cluster_name: ADMIN_CLUSTER,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: adminPort } } } }] }],
    },
  };
}

/** The ADS bootstrap plus the health listener; everything governing MCP traffic still comes over ADS. */
export function sidecarBootstrap(p: SidecarPlan): JsonObject {
  const boot = adsBootstrap({
    nodeId: nodeId(p),
    cluster: `${p.namespace}/${p.server}`,
    metadata: nodeMetadata(p),
    adminPort: p.adminPort,
    xds: p.controlPlane,
    ...(p.identity ? { tls: bootstrapTls() } : {}),
  });
  const statics = boot.static_resources as { clusters: JsonObject[]; listeners?: JsonObject[] };
  statics.clusters.push(adminCluster(p.adminPort));
  statics.listeners = [healthListener(p.healthPort)];
  return boot;
}

/** The kubelet expands `$(VAR)` in args and env values; `$$` is its escape for a literal `$`. */
export function escapeKubeExpansion(s: string): string {
  return s.replace(/\$/g, '$$$$');
}

/** Non-root, read-only root filesystem, no privilege escalation, no capabilities, RuntimeDefault seccomp. */
export function restrictedSecurityContext(uid: number): Record<string, unknown> {
  return {
    runAsNonRoot: true,
    runAsUser: uid,
    runAsGroup: uid,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

function podEnv(): Record<string, unknown>[] {
  return [
    { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
  ];
}

/** UID of the `envoy` user in the official image. */
const ENVOY_UID = 101;
/** Conventional "nonroot" UID; the authz image needs only read access to its files. */
export const AUTHZ_UID = 65532;

/** A native sidecar is started before, and stopped after, the pod's regular containers. */
function nativeRestart(p: SidecarPlan): { restartPolicy?: 'Always' } {
  return p.sidecarMode === 'native' ? { restartPolicy: 'Always' } : {};
}

export function envoyContainer(p: SidecarPlan): Container {
  return {
    name: ENVOY_CONTAINER,
    image: p.envoyImage,
    imagePullPolicy: 'IfNotPresent',
    ...nativeRestart(p),
    // The image's entrypoint script would try to switch users; run Envoy directly instead.
    command: ['envoy'],
    args: [
      // Indented so `kubectl get pod -o yaml` shows it as a readable block.
      '--config-yaml', escapeKubeExpansion(JSON.stringify(sidecarBootstrap(p), null, 2)),
      // The bootstrap can only know the generateName; the real pod name makes node ids unique per replica.
      '--service-node', '$(TOLLGATE_NODE_ID)',
      // Hot restart needs shared memory and a writable /dev/shm; Kubernetes restarts containers instead.
      '--disable-hot-restart',
      '--log-level', 'info',
    ],
    env: [...podEnv(), { name: 'TOLLGATE_NODE_ID', value: '$(POD_NAMESPACE)/$(POD_NAME)' }],
    ports: [
      { name: 'tollgate-mcp', containerPort: p.mcpPort, protocol: 'TCP' },
      { name: 'tollgate-health', containerPort: p.healthPort, protocol: 'TCP' },
    ],
    readinessProbe: {
      httpGet: { path: '/ready', port: p.healthPort },
      periodSeconds: 5,
      timeoutSeconds: 2,
      failureThreshold: 3,
    },
    ...(p.identity ? { volumeMounts: envoyIdentityMounts() } : {}),
    resources: structuredClone(p.envoyResources),
    securityContext: restrictedSecurityContext(ENVOY_UID),
  };
}

/**
 * authz listens on loopback inside the pod (only this pod's Envoy may ask it for decisions or
 * charge budgets), which a kubelet TCP or HTTP probe cannot reach; so the probe runs inside the
 * container, with the Node.js runtime the image already has.
 */
function authzProbe(port: number): Record<string, unknown> {
  const script = `require('node:net').connect(${port},'127.0.0.1').on('connect',()=>process.exit(0)).on('error',()=>process.exit(1))`;
  return { exec: { command: ['node', '-e', script] }, periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 3 };
}

export function authzContainer(p: SidecarPlan & { authz: { mode: 'sidecar' } }): Container {
  return {
    name: AUTHZ_CONTAINER,
    image: p.authzImage,
    imagePullPolicy: 'IfNotPresent',
    ...nativeRestart(p),
    // The namespace the pod was admitted into (the admission request's, not anything the pod
    // says of itself): the budgets its namespace's NATS credential may charge (docs/budgets.md).
    args: ['authz', '--config', AUTHZ_CONFIG_PATH, '--budget-namespace', p.namespace],
    // V8 heap flags (src/authz/node-flags.ts): the memory every governed pod pays.
    env: [
      ...podEnv(), { name: 'TOLLGATE_STATE_DIR', value: AUTHZ_STATE_DIR }, { name: 'NODE_OPTIONS', value: authzNodeOptions() },
      // Followed when authz.yaml says `nats_pointer_key: auto`: the policy the operator publishes for this server.
      { name: POINTER_KEY_ENV, value: serverPointerKey(p.namespace, p.server) },
    ],
    volumeMounts: [
      { name: AUTHZ_CONFIG_VOLUME, mountPath: AUTHZ_CONFIG_DIR, readOnly: true },
      { name: AUTHZ_STATE_VOLUME, mountPath: AUTHZ_STATE_DIR },
      { name: AUTHZ_NATS_VOLUME, mountPath: SIDECAR_NATS_DIR, readOnly: true },
    ],
    readinessProbe: authzProbe(p.authz.port),
    resources: structuredClone(p.authzResources),
    securityContext: restrictedSecurityContext(AUTHZ_UID),
  };
}

export function authzVolumes(p: SidecarPlan & { authz: { mode: 'sidecar' } }): Volume[] {
  return [
    // Not optional: without its configuration authz cannot govern, so the pod must not start.
    { name: AUTHZ_CONFIG_VOLUME, configMap: { name: p.authz.configMap } },
    { name: AUTHZ_STATE_VOLUME, emptyDir: { sizeLimit: '1Gi' } },
    // The namespace's NATS credential (k8s/nats-cluster.ts; `controlplane nats-certs
    // --sidecar-namespace`). Optional: an authz that does not use NATS needs none, and one whose
    // authz.yaml names these files and finds none stops at start with the file it misses (fail closed).
    // Only the authz container mounts it, so the default file mode (the pod sets no fsGroup) is kept.
    { name: AUTHZ_NATS_VOLUME, secret: { secretName: SIDECAR_NATS_SECRET, optional: true } },
  ];
}
