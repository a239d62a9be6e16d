import { randomUUID } from 'node:crypto';
import type { EventStore, EventId, StreamId } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

/** How many events, and how many bytes of messages (as JSON), one session keeps for replay. */
export interface EventStoreLimits {
  maxEvents: number;
  maxBytes: number;
}

export const DEFAULT_EVENT_STORE_LIMITS: EventStoreLimits = { maxEvents: 1000, maxBytes: 8 * 1024 * 1024 };

/** A stored event; `message` is null when it was too large to keep (replay past it is refused). */
interface Stored { stream: StreamId; message: JSONRPCMessage | null; bytes: number }

/**
 * In-memory, per-session event log so a client that lost an SSE stream can resume it with
 * Last-Event-ID. Bounded by count and by bytes: the oldest events are dropped first (a client that
 * comes back later than that gets a clear error, as with any finite buffer). A message larger than
 * the byte bound is not kept at all: a stand-in marks its place, and a replay that would have to
 * send it fails instead of silently skipping it. Without the byte bound a session that reads many
 * large results (each delivered at once) held them all until the process ran out of memory.
 */
export class BoundedEventStore implements EventStore {
  private readonly events = new Map<EventId, Stored>();
  private readonly prefix = randomUUID().slice(0, 8);
  private n = 0;
  private bytes = 0;

  constructor(private readonly limits: EventStoreLimits = DEFAULT_EVENT_STORE_LIMITS) {}

  /** Bytes of messages held now (for tests and health). */
  get heldBytes(): number { return this.bytes; }

  async storeEvent(streamId: StreamId, message: JSONRPCMessage): Promise<EventId> {
    // Fixed-width counter: ids of one store sort in write order.
    const id = `${this.prefix}-${String(++this.n).padStart(12, '0')}`;
    const size = jsonSize(message);
    const kept: Stored = size > this.limits.maxBytes ? { stream: streamId, message: null, bytes: 0 } : { stream: streamId, message, bytes: size };
    this.events.set(id, kept);
    this.bytes += kept.bytes;
    while (this.events.size > this.limits.maxEvents || this.bytes > this.limits.maxBytes) {
      const [oldest, e] = this.events.entries().next().value!;
      this.events.delete(oldest);
      this.bytes -= e.bytes;
    }
    return id;
  }

  async getStreamIdForEventId(eventId: EventId): Promise<StreamId | undefined> {
    return this.events.get(eventId)?.stream;
  }

  async replayEventsAfter(lastEventId: EventId, { send }: { send: (eventId: EventId, message: JSONRPCMessage) => Promise<void> }): Promise<StreamId> {
    const last = this.events.get(lastEventId);
    if (!last) throw new Error(`unknown or expired event id ${lastEventId}`);
    const toSend: Array<[EventId, JSONRPCMessage]> = [];
    let after = false;
    for (const [id, e] of this.events) {
      if (id === lastEventId) { after = true; continue; }
      if (!after || e.stream !== last.stream) continue;
      if (e.message === null) throw new Error(`event ${id} after ${lastEventId} was over ${this.limits.maxBytes} bytes and was not kept for replay`);
      // Priming events are stored as {} and carry no message to replay.
      if (Object.keys(e.message).length > 0) toSend.push([id, e.message]);
    }
    for (const [id, m] of toSend) await send(id, m);
    return last.stream;
  }
}

/**
 * Length of the message as JSON text, in UTF-16 units: the byte count for ASCII, which JSON-RPC
 * mostly is, and a cheap stand-in otherwise. A message that cannot be encoded counts as too large.
 */
function jsonSize(m: JSONRPCMessage): number {
  try { return JSON.stringify(m).length; } catch { return Number.POSITIVE_INFINITY; }
}
