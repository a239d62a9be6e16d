import { InlinePolicyError, buildInlinePolicy, type InlinePolicyPublisher } from '../controlplane/inline-policy.js';
import type { Handler, Outcome } from './reconcile.js';
import type { McpPolicy, McpPolicySpec, McpPolicyStatus } from './types.js';

/**
 * MCPPolicy: inline Rego is built, signed and published by the control plane under the policy's
 * own pointer key; authz sidecars follow that key (policy.nats_pointer_key). A build error goes
 * to status with file:line, and nothing is published, so the revision in force keeps serving.
 */

/** The NATS KV key an MCPPolicy is published under; authz is pointed at it. */
export function pointerKeyOf(p: { metadata: { namespace: string; name: string } }): string {
  return `mcppolicy.${p.metadata.namespace}.${p.metadata.name}`;
}

export function policyHandler(publisher: InlinePolicyPublisher): Handler<McpPolicySpec, McpPolicyStatus> {
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
      const message = `revision ${pointer.revision} in force under ${key}`;
      return {
        status: { revision: pointer.revision, contentSha256: pointer.content_sha256, pointerKey: key },
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
