import { Counter, Gauge, type Registry } from 'prom-client';
import { z } from 'zod';
import type { PolicyControlPlane } from './serve.js';

/**
 * What the control plane last did with the policy sources, for its /status and /metrics: a policy
 * edit that does not compile is refused here and never reaches authz, so authz alone cannot tell
 * anyone (issue 18, "failures that hide"). One schema: the tracker builds it, `tollgate status`
 * checks what it reads with it.
 */
export const policyBuildStatusSchema = z.object({
  /** Revision last published (or found already published), the one authz serves. */
  revision: z.number().nullable(),
  publishedAt: z.string().nullable(),
  contentSha256: z.string().nullable(),
  buildFailures: z.number().nonnegative(),
  /** The newest refused build; `failing` says whether it is newer than the last good one. */
  lastFailure: z.object({ at: z.string(), message: z.string() }).nullable(),
  failing: z.boolean(),
});
export type PolicyBuildStatus = z.output<typeof policyBuildStatusSchema>;

export class PolicyBuildTracker {
  private readonly st: PolicyBuildStatus = { revision: null, publishedAt: null, contentSha256: null, buildFailures: 0, lastFailure: null, failing: false };

  constructor(cp: Pick<PolicyControlPlane, 'on'>, registry: Registry, now: () => Date = () => new Date()) {
    const failures = new Counter({ name: 'tollgate_policy_bundle_build_failures_total', help: 'Policy builds the control plane refused (opa check/build errors): nothing was published', registers: [registry] });
    failures.inc(0);
    const failing = new Gauge({ name: 'tollgate_policy_build_failing', help: '1 while the newest policy sources do not build and an older revision serves', registers: [registry] });
    failing.set(0);
    cp.on('build-failed', (e) => {
      this.st.buildFailures++;
      this.st.lastFailure = { at: now().toISOString(), message: e.message };
      this.st.failing = true;
      failures.inc();
      failing.set(1);
    });
    cp.on('built', (e) => {
      this.st.failing = false;
      this.st.contentSha256 = e.contentSha256;
      failing.set(0);
    });
    cp.on('published', (e) => {
      this.st.revision = e.pointer.revision;
      this.st.publishedAt = e.pointer.published_at;
      this.st.contentSha256 = e.pointer.content_sha256;
    });
    cp.on('unchanged', (e) => {
      this.st.revision = e.revision;
      this.st.contentSha256 = e.contentSha256;
    });
  }

  status(): PolicyBuildStatus {
    return { ...this.st, lastFailure: this.st.lastFailure ? { ...this.st.lastFailure } : null };
  }
}
