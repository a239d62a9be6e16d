import type { KubeClient } from './kube-client.js';
import type { ObjectRef } from './kube-rest.js';
import type { Handler, Outcome } from './reconcile.js';
import { MANAGED_BY, type MeshSettings } from './server-objects.js';
import type { McpServer, VirtualMcpServer, VirtualMcpServerSpec, VirtualMcpServerStatus } from './types.js';
import { endpointOf, memberUrl, MemberError, virtualChildren } from './virtual-objects.js';

/** VirtualMCPServer: the gateway's ConfigMap, Deployment and Service, from its member MCPServers. */

export function virtualServerHandler(kube: KubeClient, mesh: MeshSettings): Handler<VirtualMcpServerSpec, VirtualMcpServerStatus> {
  const children = (v: VirtualMcpServer): ObjectRef[] => [
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `${v.metadata.name}-gateway`, namespace: v.metadata.namespace } },
    { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: `${v.metadata.name}-gateway`, namespace: v.metadata.namespace } },
    { apiVersion: 'v1', kind: 'Service', metadata: { name: v.metadata.name, namespace: v.metadata.namespace } },
  ];
  return {
    kind: 'VirtualMCPServer',
    async converge(v): Promise<Outcome<VirtualMcpServerStatus>> {
      const members = new Map<string, McpServer>();
      for (const s of v.spec.servers) {
        const m = await kube.getResource<McpServer['spec'], McpServer['status']>('MCPServer', v.metadata.namespace, s.name);
        if (m && !m.metadata.deletionTimestamp) members.set(s.name, m as McpServer);
      }
      let objs;
      try {
        objs = virtualChildren(v, members, mesh);
      } catch (e) {
        // A member missing (or a config the gateway would refuse): the running gateway is left as
        // it was; status says what to fix.
        const message = `gateway not updated: ${(e as Error).message}`;
        const reason = e instanceof MemberError ? 'MemberMissing' : 'InvalidSpec';
        return { status: {}, ready: { status: 'False', reason, message }, event: { type: 'Warning', reason, message } };
      }
      for (const o of objs) await kube.apply(o);
      const list = [...members.values()].map((m) => ({ name: m.metadata.name, url: memberUrl(m) }));
      const message = `gateway ${endpointOf(v)} (${v.spec.mode ?? 'aggregate'}) for ${list.map((m) => m.name).join(', ')}`;
      return { status: { endpoint: endpointOf(v), members: list }, ready: { status: 'True', reason: 'Applied', message }, event: { type: 'Normal', reason: 'Applied', message } };
    },
    async finalize(v) {
      for (const ref of children(v)) {
        const found = await kube.read<{ metadata?: { labels?: Record<string, string> } }>(ref);
        if (found?.metadata?.labels?.['app.kubernetes.io/managed-by'] === MANAGED_BY) await kube.remove(ref);
      }
    },
  };
}
