import type { PolicyBuildStatus } from '../controlplane/build-status.js';

/**
 * Follows the control plane's policy builds for `tollgate up`, so a policy edit that does not
 * compile is said on up's own output (not only with --verbose), and so is the next good one.
 */

/** What changed between two reads of the build status, as lines for a person; null when nothing did. */
export function describeBuildChange(prev: PolicyBuildStatus | null, cur: PolicyBuildStatus): string | null {
  if (prev && cur.buildFailures > prev.buildFailures && cur.lastFailure) {
    const serving = cur.revision !== null ? `revision ${cur.revision} still serves` : 'nothing is published yet, every call is refused';
    return `policy edit REFUSED, not published (${serving}):\n  ${cur.lastFailure.message.replace(/\n/g, '\n  ')}\n`;
  }
  if (prev && cur.revision !== null && cur.revision !== prev.revision) {
    return `policy revision ${cur.revision} published (content ${cur.contentSha256?.slice(0, 12) ?? '?'})${prev.failing ? ': the refused edit is fixed' : ''}\n`;
  }
  if (prev?.failing && !cur.failing) return `policy sources build again (same content as revision ${cur.revision ?? '?'}, which serves)\n`;
  return null;
}

/** Polls <admin>/status every intervalMs and calls say() with each change; returns a stop function. */
export function watchPolicyBuilds(adminUrl: string, say: (text: string) => void, intervalMs = 1000): () => void {
  let prev: PolicyBuildStatus | null = null;
  let busy = false;
  const tick = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    try {
      const res = await fetch(`${adminUrl}/status`, { signal: AbortSignal.timeout(intervalMs * 3) });
      const cur = ((await res.json()) as { policy?: PolicyBuildStatus }).policy;
      if (cur) {
        const said = describeBuildChange(prev, cur);
        if (said) say(said);
        prev = cur;
      }
    } catch {
      // The control plane's own process watch reports it dying; a missed poll is retried.
    } finally {
      busy = false;
    }
  };
  void tick();
  const timer = setInterval(() => void tick(), intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
