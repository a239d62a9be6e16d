import { request } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

/**
 * Plain JSON requests to the API server with the kubeconfig's credentials. Used for server-side
 * apply of whole manifests: client-node's typed serializer rebuilds objects from its generated
 * models and silently drops fields whose JSON names differ from its property names (`enum`,
 * `default`, `x-kubernetes-validations` in a CRD), so manifests are sent exactly as written.
 */

export interface ResourceKind { group: string; version: string; plural: string; namespaced: boolean }

/** The kinds Tollgate applies; anything else is refused by name rather than guessed. */
const KINDS: Record<string, ResourceKind> = {
  'v1/Namespace': { group: '', version: 'v1', plural: 'namespaces', namespaced: false },
  'v1/Service': { group: '', version: 'v1', plural: 'services', namespaced: true },
  'v1/ConfigMap': { group: '', version: 'v1', plural: 'configmaps', namespaced: true },
  'v1/Secret': { group: '', version: 'v1', plural: 'secrets', namespaced: true },
  'v1/ServiceAccount': { group: '', version: 'v1', plural: 'serviceaccounts', namespaced: true },
  'v1/Pod': { group: '', version: 'v1', plural: 'pods', namespaced: true },
  'apps/v1/Deployment': { group: 'apps', version: 'v1', plural: 'deployments', namespaced: true },
  'apps/v1/StatefulSet': { group: 'apps', version: 'v1', plural: 'statefulsets', namespaced: true },
  'networking.k8s.io/v1/NetworkPolicy': { group: 'networking.k8s.io', version: 'v1', plural: 'networkpolicies', namespaced: true },
  'policy/v1/PodDisruptionBudget': { group: 'policy', version: 'v1', plural: 'poddisruptionbudgets', namespaced: true },
  'rbac.authorization.k8s.io/v1/Role': { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'roles', namespaced: true },
  'rbac.authorization.k8s.io/v1/RoleBinding': { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'rolebindings', namespaced: true },
  'rbac.authorization.k8s.io/v1/ClusterRole': { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'clusterroles', namespaced: false },
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': { group: 'rbac.authorization.k8s.io', version: 'v1', plural: 'clusterrolebindings', namespaced: false },
  'admissionregistration.k8s.io/v1/MutatingWebhookConfiguration': { group: 'admissionregistration.k8s.io', version: 'v1', plural: 'mutatingwebhookconfigurations', namespaced: false },
  'apiextensions.k8s.io/v1/CustomResourceDefinition': { group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions', namespaced: false },
  'coordination.k8s.io/v1/Lease': { group: 'coordination.k8s.io', version: 'v1', plural: 'leases', namespaced: true },
  'tollgate.dev/v1alpha1/MCPServer': { group: 'tollgate.dev', version: 'v1alpha1', plural: 'mcpservers', namespaced: true },
  'tollgate.dev/v1alpha1/MCPPolicy': { group: 'tollgate.dev', version: 'v1alpha1', plural: 'mcppolicies', namespaced: true },
  'tollgate.dev/v1alpha1/TokenBudget': { group: 'tollgate.dev', version: 'v1alpha1', plural: 'tokenbudgets', namespaced: true },
  'tollgate.dev/v1alpha1/VirtualMCPServer': { group: 'tollgate.dev', version: 'v1alpha1', plural: 'virtualmcpservers', namespaced: true },
};

export interface ObjectRef { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } }

export class KubeRestError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
    this.name = 'KubeRestError';
  }
}

/** The REST path of one object; throws for kinds this module does not know. */
export function objectPath(o: ObjectRef): string {
  const k = KINDS[`${o.apiVersion}/${o.kind}`];
  if (!k) throw new Error(`don't know the REST path of ${o.apiVersion} ${o.kind}`);
  const base = k.group ? `/apis/${k.group}/${k.version}` : `/api/${k.version}`;
  if (!k.namespaced) return `${base}/${k.plural}/${encodeURIComponent(o.metadata.name)}`;
  const ns = o.metadata.namespace;
  if (!ns) throw new Error(`${o.kind} ${o.metadata.name} needs a namespace`);
  return `${base}/namespaces/${encodeURIComponent(ns)}/${k.plural}/${encodeURIComponent(o.metadata.name)}`;
}

export async function kubeRequest<T>(kc: KubeConfig, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const url = new URL(path, cluster.server);
  const opts: import('node:https').RequestOptions = { method, headers: { accept: 'application/json' } };
  await kc.applyToHTTPSOptions(opts);
  const text = body === undefined ? undefined : JSON.stringify(body);
  if (text !== undefined) Object.assign(opts.headers!, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) });
  return new Promise<T>((resolve, reject) => {
    const req = request(url, opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = null;
        try { parsed = raw ? JSON.parse(raw) : null; } catch { parsed = null; }
        const code = res.statusCode ?? 0;
        if (code >= 200 && code < 300) return resolve(parsed as T);
        const msg = (parsed as { message?: string } | null)?.message ?? raw.slice(0, 300);
        reject(new KubeRestError(code, `${method} ${path}: ${msg}`));
      });
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${path}: no answer within 30 s`)));
    req.on('error', reject);
    req.end(text);
  });
}

/** Server-side apply (`kubectl apply --server-side --force-conflicts`): idempotent, exact. */
export function serverSideApply<T>(kc: KubeConfig, obj: ObjectRef, fieldManager: string, opts: { dryRun?: boolean } = {}): Promise<T> {
  const path = `${objectPath(obj)}?fieldManager=${encodeURIComponent(fieldManager)}&force=true${opts.dryRun ? '&dryRun=All' : ''}`;
  return kubeRequest<T>(kc, 'PATCH', path, obj, 'application/apply-patch+yaml');
}
