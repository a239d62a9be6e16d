import type { ChargeSubject } from '../budget/types.js';
import type { PolicyInput } from '../contract/policy.js';
import type { JsonRpcId } from '../mcp/jsonrpc.js';
import type { SessionOwner } from './sessions.js';

/**
 * What Check learned about an allowed call, kept until ext_proc sees the response for it.
 * Check tags the upstream request with `x-tollgate-decision-id`; ext_proc reads that header from
 * the request headers Envoy sends it and looks the call up here (same process, same port).
 */
export interface PendingCall {
  decisionId: string;
  subject: ChargeSubject;
  method: string | null;
  /**
   * The method of every message of the request, in order (a batch has several). Optional: without
   * it ext_proc treats any response as possibly holding a list result to filter.
   */
  methods?: Array<string | null>;
  /** The JSON-RPC id of every message, in order (for errors ext_proc answers in their place). */
  ids?: Array<JsonRpcId | null>;
  /** The verified caller: owner of the session an `initialize` response creates. */
  owner?: SessionOwner;
  tool: string | null;
  server: string;
  /** The server's namespace (for the accounting record); optional for older callers. */
  namespace?: string;
  /** Tokens already charged at Check time (the request's arguments). */
  requestTokens: number;
  /**
   * The policy input of a tools/list (prompts/list, resources/list) request, so ext_proc can ask
   * the policy about each listed item as the same caller.
   */
  listInput?: PolicyInput;
  createdAt: number;
}

export const DECISION_ID_HEADER = 'x-tollgate-decision-id';

/** Bounded map with TTL: a response that never comes must not leak memory. */
export class PendingCalls {
  private readonly map = new Map<string, PendingCall>();
  constructor(private readonly ttlMs = 10 * 60_000, private readonly max = 20_000) {}

  put(call: PendingCall): void {
    // A sidecar without ext_proc never takes its calls back: expire from the old end on every
    // put (amortised O(1), insertion order is age order), and never hold more than max.
    this.evict(call.createdAt);
    this.map.set(call.decisionId, call);
  }

  /** Returns and forgets the call. */
  take(decisionId: string): PendingCall | undefined {
    const c = this.map.get(decisionId);
    if (c) this.map.delete(decisionId);
    return c;
  }

  peek(decisionId: string): PendingCall | undefined { return this.map.get(decisionId); }

  get size(): number { return this.map.size; }

  private evict(now: number): void {
    for (const [k, v] of this.map) {
      if (now - v.createdAt > this.ttlMs || this.map.size >= this.max) this.map.delete(k);
      else break; // insertion order = age order
    }
  }
}
