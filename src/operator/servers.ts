import { InjectionError } from '../k8s/mutate.js';
import type { KubeClient } from './kube-client.js';
import type { ObjectRef } from './kube-rest.js';
import type { Handler, Outcome } from './reconcile.js';
import { childrenFor, InvalidServerSpec, MANAGED_BY, resolvedRun, type MeshSettings } from './server-objects.js';
import type { PendingTool } from '../pins/review.js';
import type { Condition, McpServer, McpServerSpec, McpServerStatus, PendingToolStatus } from './types.js';

/** MCPServer: with spec.run or spec.source, its Deployment, Service and NetworkPolicy; without, status only. */

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

/** Tool definitions the server offers that differ from their pins (NATS KV, docs/tool-pinning.md). */
export interface PendingToolsReader {
  pending(server: string): Promise<PendingTool[]>;
}

/** How many pending tools status lists by name; the count is always exact. */
export const MAX_LISTED_PENDING = 50;

/** Pure: the status field and condition for a server's pending tool changes. */
export function pendingStatus(server: string, pending: readonly PendingTool[]): { pendingTools: PendingToolStatus[]; condition: Omit<Condition, 'lastTransitionTime'> } {
  const pendingTools = pending.slice(0, MAX_LISTED_PENDING).map((t) => ({
    tool: t.tool, status: t.status, sha256: t.sha256, ...(t.approved_sha256 ? { approvedSha256: t.approved_sha256 } : {}),
    findings: t.findings.map((f) => f.kind), seenAt: t.seen_at,
  }));
  if (pending.length === 0) {
    return { pendingTools, condition: { type: 'ToolsPendingReview', status: 'False', reason: 'AllPinned', message: 'every tool the server offers matches its approved pin' } };
  }
  const names = pending.slice(0, 10).map((t) => `${t.tool} (${t.status}${t.findings.length ? `, ${t.findings.length} finding(s)` : ''})`).join(', ');
  const more = pending.length > 10 ? ` and ${pending.length - 10} more` : '';
  return {
    pendingTools,
    condition: {
      type: 'ToolsPendingReview', status: 'True', reason: 'ToolsChanged',
      message: `${pending.length} tool(s) await review and are hidden and refused until approved: ${names}${more}; see tollgate tools diff --server ${server} --tool NAME`,
    },
  };
}

export function serverHandler(kube: KubeClient, mesh: MeshSettings, pins?: PendingToolsReader): Handler<McpServerSpec, McpServerStatus> {
  /** Pending tool changes as status and a condition; without pin buckets, nothing is said. */
  const review = async (s: McpServer): Promise<{ status: { pendingTools?: PendingToolStatus[] }; extra: Omit<Condition, 'lastTransitionTime'>[] }> => {
    if (!pins) return { status: {}, extra: [] };
    const p = pendingStatus(s.metadata.name, await pins.pending(s.metadata.name));
    return { status: { pendingTools: p.pendingTools }, extra: [p.condition] };
  };
  return {
    kind: 'MCPServer',
    async converge(s): Promise<Outcome<McpServerStatus>> {
      const tools = await review(s);
      if (!s.spec.run && !s.spec.source) {
        await removeChildren(kube, s);
        const up = s.spec.upstream!;
        return { status: tools.status, extra: tools.extra, ready: { status: 'True', reason: 'ExternalServer', message: `governs the existing Service ${up.namespace ?? s.metadata.namespace}/${up.service}:${up.port}` } };
      }
      let children;
      let image = '';
      try {
        children = childrenFor(s, mesh);
        image = resolvedRun(s, mesh)!.image;
      } catch (e) {
        // The spec asks for something that cannot be governed (a port clash with the sidecars, a
        // source the CRD of an older release let through): say so in status; retrying would not
        // help until the spec changes.
        if (!(e instanceof InjectionError) && !(e instanceof InvalidServerSpec)) throw e;
        const message = `cannot run this server: ${e.message}`;
        return { status: tools.status, extra: tools.extra, ready: { status: 'False', reason: 'InvalidSpec', message }, event: { type: 'Warning', reason: 'InvalidSpec', message } };
      }
      for (const c of children) await kube.apply(c);
      const from = s.spec.source ? `, stdio server ${s.spec.source.package} behind the bridge` : '';
      const message = `Deployment, Service and NetworkPolicy ${s.metadata.name} applied (${s.spec.run?.replicas ?? 1} replica(s), image ${image}${from})`;
      return { status: tools.status, extra: tools.extra, ready: { status: 'True', reason: 'Applied', message }, event: { type: 'Normal', reason: 'Applied', message } };
    },
    finalize: (s) => removeChildren(kube, s),
  };
}
