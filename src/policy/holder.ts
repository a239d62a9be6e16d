import type { PolicyEvaluator } from '../contract/policy.js';

/**
 * The policy in force. A swap is one reference assignment: a Check that started on the old
 * evaluator finishes on it (evaluation is synchronous), the next one uses the new one.
 */
export class PolicyHolder {
  private current: PolicyEvaluator | null = null;
  private readonly listeners = new Set<(rev: string) => void>();
  lastError: { at: string; message: string; revision: string | null } | null = null;

  get(): PolicyEvaluator | null { return this.current; }

  swap(next: PolicyEvaluator): void {
    this.current = next;
    for (const l of this.listeners) l(next.revision);
  }

  /** Records a rejected bundle; the current policy keeps serving. */
  reject(message: string, revision: string | null): void {
    this.lastError = { at: new Date().toISOString(), message, revision };
  }

  onSwap(l: (rev: string) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
}
