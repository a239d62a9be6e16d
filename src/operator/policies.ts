import { InlinePolicyError, buildInlinePolicy, type InlinePolicyPublisher } from '../controlplane/inline-policy.js';
import { policyPointerKey, serverPointerKey } from '../bundle/policy-keys.js';
import type { Handler, Outcome } from './reconcile.js';
import type { McpPolicy, McpPolicySpec, McpPolicyStatus } from './types.js';

/**
 * MCPPolicy: inline Rego is built, signed and published by the control plane under the policy's
 * own pointer key; authz sidecars follow that key (policy.nats_pointer_key). A build error goes
 * to status with file:line, and nothing is published, so the revision in force keeps serving.
 */

/** The NATS KV key an MCPPolicy is published under; authz is pointed at it. */
export function pointerKeyOf(p: { metadata: { namespace: string; name: string } }): string {
  return policyPointerKey(p.metadata.namespace, p.metadata.name);
}

/**
 * Pure: which MCPPolicy governs each server of a namespace. A policy that names a server in
 * `servers` beats one that covers the whole namespace (empty list); among equals the first by
 * name wins, so every replica and every resync decides the same way.
 */
export function assignServers(policies: readonly McpPolicy[], serversInNamespace: readonly string[]): Map<string, string> {
  const live = policies.filter((p) => !p.metadata.deletionTimestamp).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  const out = new Map<string, string>();
  for (const p of live) for (const s of p.spec.servers ?? []) if (!out.has(s)) out.set(s, p.metadata.name);
  for (const p of live) {
    if ((p.spec.servers ?? []).length > 0) continue;
    for (const s of serversInNamespace) if (!out.has(s)) out.set(s, p.metadata.name);
  }
  return out;
}

export interface PolicyDeps {
  publisher: InlinePolicyPublisher;
  /** MCPPolicy objects of a namespace (informer cache). */
  policiesIn: (namespace: string) => McpPolicy[];
  /** Names of the MCPServer objects of a namespace (informer cache). */
  serversIn: (namespace: string) => string[];
}

export function policyHandler(d: PolicyDeps): Handler<McpPolicySpec, McpPolicyStatus> {
  const publisher = d.publisher;
  return {
    kind: 'MCPPolicy',
    async converge(p: McpPolicy): Promise<Outcome<McpPolicyStatus>> {
      const kept = { ...(p.status?.revision !== undefined ? { revision: p.status.revision } : {}), ...(p.status?.contentSha256 ? { contentSha256: p.status.contentSha256 } : {}) };
      if (p.spec.bundle) {
        const message = `authz fetches ${p.spec.bundle.url} itself; nothing is published`;
        return { status: {}, ready: { status: 'True', reason: 'ExternalBundle', message } };
      }
      const key = pointerKeyOf(p);
      let files;
      try {
        files = await buildInlinePolicy({ modules: p.spec.rego!.sources, ...(p.spec.rego!.data !== undefined ? { data: p.spec.rego!.data } : {}), entrypoint: p.spec.entrypoint ?? 'tollgate' });
      } catch (e) {
        if (!(e instanceof InlinePolicyError)) throw e;
        const serving = kept.revision !== undefined ? `revision ${kept.revision} keeps serving` : 'nothing was ever published for it, so its servers refuse every call';
        const message = `generation ${p.metadata.generation ?? '?'} does not build (${serving}):\n${e.message}`;
        return { status: { ...kept, pointerKey: key }, ready: { status: 'False', reason: 'BuildFailed', message }, event: { type: 'Warning', reason: 'BuildFailed', message } };
      }
      const { pointer, changed } = await publisher.publish(key, files);
      // The same bundle under each governed server's key, which that server's authz sidecars
      // follow with `nats_pointer_key: auto` (the injector names the key): nothing to configure.
      const ns = p.metadata.namespace;
      const wanted = (p.spec.servers ?? []).length > 0 ? p.spec.servers! : d.serversIn(ns);
      const assigned = assignServers([...d.policiesIn(ns).filter((x) => x.metadata.name !== p.metadata.name), p], d.serversIn(ns));
      const mine = wanted.filter((s) => assigned.get(s) === p.metadata.name).sort();
      for (const s of mine) await publisher.publish(serverPointerKey(ns, s), files);
      const lost = wanted.filter((s) => assigned.get(s) !== p.metadata.name).map((s) => `${s} (governed by MCPPolicy ${assigned.get(s)})`);
      const message = `revision ${pointer.revision} in force under ${key}; servers: ${mine.length ? mine.join(', ') : 'none'}${lost.length ? `; not governing ${lost.join(', ')}` : ''}`;
      return {
        status: { revision: pointer.revision, contentSha256: pointer.content_sha256, pointerKey: key, servers: mine },
        ready: { status: 'True', reason: 'Published', message },
        // Only a new revision is news; re-finding the one in force (a restart, a resync) is not.
        ...(changed ? { event: { type: 'Normal' as const, reason: 'Published', message: `published revision ${pointer.revision} under ${key}` } } : {}),
      };
    },
    // What was published stays: authz keeps the last good policy rather than falling open, and
    // revisions under the key keep counting up if the policy comes back.
    finalize: async () => undefined,
  };
}
