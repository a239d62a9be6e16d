/**
 * The names users put on their namespaces and pods. They are public API: docs/kubernetes.md lists
 * each one, and the MutatingWebhookConfiguration in manifests/base selects on the label ones.
 */

const PREFIX = 'tollgate.dev/';

export const Annotation = {
  /** `"false"` on a pod (annotation or label) keeps it out of the mesh. */
  inject: `${PREFIX}inject`,
  /** Set by the injector to its version; a pod carrying it is never injected again. */
  injected: `${PREFIX}injected`,
  /** Name of the governed MCP server (else the `app.kubernetes.io/name` label). */
  server: `${PREFIX}server`,
  /** Port Envoy listens on for MCP clients (default 10000). */
  mcpPort: `${PREFIX}mcp-port`,
  /** Port (number or container port name) of the MCP server container (else its first port). */
  upstreamPort: `${PREFIX}upstream-port`,
  /** MCP endpoint path on the server (default /mcp). */
  mcpPath: `${PREFIX}mcp-path`,
  /** `sidecar` (default): authz runs in the pod; `shared`: the pod uses the shared authz Service. */
  authz: `${PREFIX}authz`,
  /** ConfigMap (in the pod's namespace) holding the authz sidecar's authz.yaml. */
  authzConfig: `${PREFIX}authz-config`,
} as const;

/** The namespace label the webhook's namespaceSelector matches. */
export const NAMESPACE_LABEL = `${PREFIX}inject`;
export const NAMESPACE_LABEL_VALUE = 'enabled';
/** The value of the `tollgate.dev/inject` annotation or label that opts a pod out. */
export const OPT_OUT_VALUE = 'false';

/** Kubernetes' own convention for "the main container of this pod". */
export const DEFAULT_CONTAINER_ANNOTATION = 'kubectl.kubernetes.io/default-container';
export const APP_NAME_LABEL = 'app.kubernetes.io/name';

export const ENVOY_CONTAINER = 'tollgate-envoy';
export const AUTHZ_CONTAINER = 'tollgate-authz';
export const AUTHZ_CONFIG_VOLUME = 'tollgate-authz-config';
export const AUTHZ_STATE_VOLUME = 'tollgate-authz-state';
export const DEFAULT_AUTHZ_CONFIGMAP = 'tollgate-authz';
export const AUTHZ_CONFIG_DIR = '/etc/tollgate';
export const AUTHZ_CONFIG_PATH = `${AUTHZ_CONFIG_DIR}/authz.yaml`;
export const AUTHZ_STATE_DIR = '/var/lib/tollgate';

export const DEFAULT_ENVOY_IMAGE = 'envoyproxy/envoy:v1.40.0';
export const DEFAULT_AUTHZ_IMAGE_REPO = 'ghcr.io/tollgate/tollgate';
export const DEFAULT_CONTROL_PLANE = { host: 'tollgate-controlplane.tollgate-system.svc', port: 18000 } as const;
export const DEFAULT_SHARED_AUTHZ = { host: 'tollgate-authz.tollgate-system.svc', port: 9191 } as const;

export const DEFAULT_MCP_PORT = 10000;
export const DEFAULT_MCP_PATH = '/mcp';
export const DEFAULT_ENVOY_ADMIN_PORT = 9901;
/** Envoy's admin stays on loopback; this listener exposes only its /ready to the kubelet's probe. */
export const DEFAULT_ENVOY_HEALTH_PORT = 9902;
export const DEFAULT_AUTHZ_PORT = 9191;
