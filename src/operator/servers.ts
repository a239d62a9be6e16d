import { InjectionError } from '../k8s/mutate.js';
import type { KubeClient } from './kube-client.js';
import type { ObjectRef } from './kube-rest.js';
import type { Handler, Outcome } from './reconcile.js';
import { childrenFor, MANAGED_BY, type MeshSettings } from './server-objects.js';
import type { McpServer, McpServerSpec, McpServerStatus } from './types.js';

/** MCPServer: with spec.run, its Deployment, Service and NetworkPolicy; without, status only. */

const CHILD_KINDS: { apiVersion: string; kind: string }[] = [
  { apiVersion: 'apps/v1', kind: 'Deployment' },
  { apiVersion: 'v1', kind: 'Service' },
  { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy' },
];

/** Deletes the children this operator made (and only those: a same-named object of someone else stays). */
async function removeChildren(kube: KubeClient, s: McpServer): Promise<void> {
  for (const k of CHILD_KINDS) {
    const ref: ObjectRef = { ...k, metadata: { name: s.metadata.name, namespace: s.metadata.namespace } };
    const found = await kube.read<{ metadata?: { labels?: Record<string, string> } }>(ref);
    if (found?.metadata?.labels?.['app.kubernetes.io/managed-by'] === MANAGED_BY) await kube.remove(ref);
  }
}

export function serverHandler(kube: KubeClient, mesh: MeshSettings): Handler<McpServerSpec, McpServerStatus> {
  return {
    kind: 'MCPServer',
    async converge(s): Promise<Outcome<McpServerStatus>> {
      if (!s.spec.run) {
        await removeChildren(kube, s);
        const up = s.spec.upstream!;
        return { status: {}, ready: { status: 'True', reason: 'ExternalServer', message: `governs the existing Service ${up.namespace ?? s.metadata.namespace}/${up.service}:${up.port}` } };
      }
      let children;
      try {
        children = childrenFor(s, mesh);
      } catch (e) {
        // The spec asks for something that cannot be governed (a port clash with the sidecars):
        // say so in status; retrying would not help until the spec changes.
        if (!(e instanceof InjectionError)) throw e;
        const message = `cannot run this server: ${e.message}`;
        return { status: {}, ready: { status: 'False', reason: 'InvalidSpec', message }, event: { type: 'Warning', reason: 'InvalidSpec', message } };
      }
      for (const c of children) await kube.apply(c);
      const message = `Deployment, Service and NetworkPolicy ${s.metadata.name} applied (${s.spec.run.replicas ?? 1} replica(s), image ${s.spec.run.image})`;
      return { status: {}, ready: { status: 'True', reason: 'Applied', message }, event: { type: 'Normal', reason: 'Applied', message } };
    },
    finalize: (s) => removeChildren(kube, s),
  };
}
