import type { JSONRPCMessage, RequestId } from '@modelcontextprotocol/sdk/types.js';

/** A client request the server has not answered yet. */
interface Pending { id: RequestId; progressToken: string | number | null; seq: number }

const key = (id: RequestId): string => `${typeof id}:${String(id)}`;

export function isRequest(m: JSONRPCMessage): m is JSONRPCMessage & { id: RequestId; method: string; params?: Record<string, unknown> } {
  return 'method' in m && 'id' in m && m.id !== undefined;
}
export function isNotification(m: JSONRPCMessage): m is JSONRPCMessage & { method: string; params?: Record<string, unknown> } {
  return 'method' in m && !('id' in m && m.id !== undefined);
}
export function isResponse(m: JSONRPCMessage): m is JSONRPCMessage & { id: RequestId } {
  return !('method' in m) && 'id' in m && ('result' in m || 'error' in m);
}

function progressTokenOf(params: Record<string, unknown> | undefined): string | number | null {
  const meta = params?._meta;
  if (typeof meta !== 'object' || meta === null) return null;
  const t = (meta as { progressToken?: unknown }).progressToken;
  return typeof t === 'string' || typeof t === 'number' ? t : null;
}

/**
 * Which HTTP stream a message from a stdio server belongs on. stdio carries no stream identity,
 * so: a response goes to its request's stream; a progress notification to the request that
 * handed out its token; anything else the server sends while requests are open (logs, sampling,
 * elicitation) to the newest open request, whose handler is the one most likely running; and with
 * nothing open, to the session's standalone GET stream.
 */
export class InFlight {
  private readonly pending = new Map<string, Pending>();
  private seq = 0;

  add(id: RequestId, params: Record<string, unknown> | undefined): void {
    this.pending.set(key(id), { id, progressToken: progressTokenOf(params), seq: ++this.seq });
  }

  remove(id: RequestId): boolean { return this.pending.delete(key(id)); }
  has(id: RequestId): boolean { return this.pending.has(key(id)); }
  get size(): number { return this.pending.size; }

  /** Removes and returns every open request (the server died: each gets an error). */
  drain(): RequestId[] {
    const ids = [...this.pending.values()].map((p) => p.id);
    this.pending.clear();
    return ids;
  }

  /** The client request a server message relates to; undefined means the standalone stream. */
  relatedTo(m: JSONRPCMessage): RequestId | undefined {
    if (isResponse(m)) return this.has(m.id) ? m.id : undefined;
    if (isNotification(m) && m.method === 'notifications/progress') {
      const token = m.params?.progressToken;
      for (const p of this.pending.values()) if (p.progressToken !== null && p.progressToken === token) return p.id;
    }
    let newest: Pending | undefined;
    for (const p of this.pending.values()) if (!newest || p.seq > newest.seq) newest = p;
    return newest?.id;
  }
}
