import { randomUUID } from 'node:crypto';
import type { EventStore, EventId, StreamId } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

/**
 * In-memory, per-session event log so a client that lost an SSE stream can resume it with
 * Last-Event-ID. Bounded: the oldest events are dropped first (a client that comes back later than
 * that misses them, as with any finite buffer).
 */
export class BoundedEventStore implements EventStore {
  private readonly events = new Map<EventId, { stream: StreamId; message: JSONRPCMessage }>();
  private readonly prefix = randomUUID().slice(0, 8);
  private n = 0;

  constructor(private readonly maxEvents = 1000) {}

  async storeEvent(streamId: StreamId, message: JSONRPCMessage): Promise<EventId> {
    // Fixed-width counter: ids of one store sort in write order.
    const id = `${this.prefix}-${String(++this.n).padStart(12, '0')}`;
    this.events.set(id, { stream: streamId, message });
    if (this.events.size > this.maxEvents) this.events.delete(this.events.keys().next().value!);
    return id;
  }

  async getStreamIdForEventId(eventId: EventId): Promise<StreamId | undefined> {
    return this.events.get(eventId)?.stream;
  }

  async replayEventsAfter(lastEventId: EventId, { send }: { send: (eventId: EventId, message: JSONRPCMessage) => Promise<void> }): Promise<StreamId> {
    const last = this.events.get(lastEventId);
    if (!last) throw new Error(`unknown or expired event id ${lastEventId}`);
    let after = false;
    for (const [id, e] of this.events) {
      if (id === lastEventId) { after = true; continue; }
      // Priming events are stored as {} and carry no message to replay.
      if (after && e.stream === last.stream && Object.keys(e.message).length > 0) await send(id, e.message);
    }
    return last.stream;
  }
}
