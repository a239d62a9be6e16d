import { Annotation, DEFAULT_ENVOY_HEALTH_PORT, DEFAULT_MCP_PATH, DEFAULT_MCP_PORT } from '../k8s/annotations.js';
import { injectSidecars, type InjectOptions } from '../k8s/mutate.js';
import { restrictedSecurityContext } from '../k8s/sidecars.js';
import type { Container, PodLike } from '../k8s/types.js';
import { API_VERSION, type McpServer, type McpServerRun } from './types.js';
import { InvalidServerSpec, sourceRun, type ResolvedRun } from './source-run.js';

export { InvalidServerSpec, type ResolvedRun };

/**
 * What an MCPServer with `spec.run` turns into: a Deployment whose pod template already carries
 * the sidecars, a Service whose port leads to Envoy, and a NetworkPolicy. Pure: the reconciler
 * applies these with server-side apply, so applying them again changes nothing.
 */

export const MANAGED_BY = 'tollgate-operator';
export const DEFAULT_RUN_AS_USER = 65532;

export interface KubeManifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; labels?: Record<string, string>; annotations?: Record<string, string>; ownerReferences?: unknown[] };
  spec: Record<string, unknown>;
}

export interface MeshSettings {
  /** Namespace of the control plane, NATS and shared authz: sidecars must reach it. */
  systemNamespace: string;
  inject: InjectOptions;
  /** Registry prefix of the images spec.source package servers run from (docs/kubernetes.md). */
  serverImagePrefix?: string;
}

/** What the pod runs: spec.run as written, or the bridge over the source's image (src/operator/source-run.ts). */
export function resolvedRun(s: McpServer, mesh: Pick<MeshSettings, 'serverImagePrefix'>): ResolvedRun | null {
  if (s.spec.source) return sourceRun(s, mesh.serverImagePrefix);
  const run = s.spec.run;
  if (!run) return null;
  if (!run.image || !run.port) throw new InvalidServerSpec('spec.run needs image and port');
  return { ...run, image: run.image, port: run.port };
}


function labels(s: McpServer): Record<string, string> {
  return { 'app.kubernetes.io/name': s.metadata.name, 'app.kubernetes.io/managed-by': MANAGED_BY, 'app.kubernetes.io/part-of': 'tollgate' };
}

function selector(s: McpServer): Record<string, string> {
  return { 'app.kubernetes.io/name': s.metadata.name, 'app.kubernetes.io/managed-by': MANAGED_BY };
}

function ownerRef(s: McpServer): unknown[] {
  // Garbage collection removes the children in clusters that run it; the finalizer covers the rest.
  return s.metadata.uid ? [{ apiVersion: API_VERSION, kind: 'MCPServer', name: s.metadata.name, uid: s.metadata.uid, controller: true, blockOwnerDeletion: true }] : [];
}

function meta(s: McpServer): KubeManifest['metadata'] {
  return { name: s.metadata.name, namespace: s.metadata.namespace, labels: labels(s), ownerReferences: ownerRef(s) };
}

/** The permission profile as the server container's securityContext: nothing granted by default. */
export function serverSecurityContext(run: McpServerRun): Record<string, unknown> {
  return { ...restrictedSecurityContext(run.permissions?.runAsUser ?? DEFAULT_RUN_AS_USER), privileged: false };
}

/** Not "tollgate-…": the injector reserves that prefix for its own volumes. */
function volumeName(i: number): string {
  return `writable-${i}`;
}

export function podTemplate(s: McpServer, run: ResolvedRun): PodLike {
  const fs = run.permissions?.filesystem ?? [];
  const container: Container = {
    name: 'server',
    image: run.image,
    ...(run.command ? { command: run.command } : {}),
    ...(run.args ? { args: run.args } : {}),
    // HOST/PORT follow the convention most MCP server images read; loopback keeps the server
    // unreachable except through Envoy.
    env: [
      { name: 'HOST', value: '127.0.0.1' }, { name: 'PORT', value: String(run.port) }, ...(run.env ?? []),
      // Kubernetes resolves these in the kubelet: the value never passes through the operator.
      ...(run.secretEnv ?? []).map((e) => ({ name: e.name, valueFrom: { secretKeyRef: { name: e.secretName, key: e.key } } })),
    ],
    ports: [{ name: 'mcp-server', containerPort: run.port, protocol: 'TCP' }],
    ...(run.resources ? { resources: run.resources } : {}),
    securityContext: serverSecurityContext(run),
    volumeMounts: fs.map((f, i) => ({ name: volumeName(i), mountPath: f.path })),
  };
  return {
    metadata: {
      labels: selector(s),
      annotations: {
        [Annotation.server]: s.metadata.name,
        [Annotation.upstreamPort]: String(run.port),
        [Annotation.mcpPath]: s.spec.upstream?.path ?? DEFAULT_MCP_PATH,
      },
    },
    spec: {
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [container],
      volumes: fs.map((f, i) => ({ name: volumeName(i), emptyDir: { sizeLimit: f.sizeLimit ?? '1Gi' } })),
    },
  };
}

/** The Deployment, with the sidecars injected into its pod template the same way the webhook would. */
export function deploymentFor(s: McpServer, mesh: MeshSettings): KubeManifest {
  const run = resolvedRun(s, mesh);
  if (!run) throw new InvalidServerSpec('neither spec.run nor spec.source: nothing to run');
  const template = podTemplate(s, run);
  const injected = injectSidecars(template, { ...mesh.inject, namespace: s.metadata.namespace, podName: `${s.metadata.name}-`, serverName: s.metadata.name });
  if (!injected.injected) throw new Error(`sidecar injection skipped the pod template: ${injected.reason}`);
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(s),
    spec: {
      replicas: run.replicas ?? 1,
      selector: { matchLabels: selector(s) },
      template: injected.pod,
    },
  };
}

export function serviceFor(s: McpServer): KubeManifest {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(s),
    spec: {
      selector: selector(s),
      // By number: named ports on native sidecars resolve only from Kubernetes 1.32 on.
      ports: [{ name: 'mcp', port: s.spec.upstream?.port ?? 80, targetPort: DEFAULT_MCP_PORT, protocol: 'TCP', appProtocol: 'http' }],
    },
  };
}

/**
 * Ingress only to Envoy (MCP and health ports), never to the server's own port. Egress: DNS, the
 * Tollgate system namespace (xDS, NATS, shared authz), and whatever permissions.egress lists.
 */
export function networkPolicyFor(s: McpServer, mesh: MeshSettings): KubeManifest {
  const egress: Record<string, unknown>[] = [
    { ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }] },
    { to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': mesh.systemNamespace } } }] },
  ];
  // Nothing beyond DNS and the mesh unless permissions.egress names it: a source server gets no network by default.
  for (const e of s.spec.run?.permissions?.egress ?? []) {
    egress.push({
      to: [{ ipBlock: { cidr: e.cidr } }],
      ...(e.ports && e.ports.length ? { ports: e.ports.map((port) => ({ protocol: 'TCP', port })) } : {}),
    });
  }
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: meta(s),
    spec: {
      podSelector: { matchLabels: selector(s) },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ ports: [{ protocol: 'TCP', port: DEFAULT_MCP_PORT }, { protocol: 'TCP', port: DEFAULT_ENVOY_HEALTH_PORT }] }],
      egress,
    },
  };
}

export function childrenFor(s: McpServer, mesh: MeshSettings): KubeManifest[] {
  return [deploymentFor(s, mesh), serviceFor(s), networkPolicyFor(s, mesh)];
}
