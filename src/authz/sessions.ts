import type { Identity } from '../identity/types.js';

/**
 * Which verified identity owns each MCP session (`Mcp-Session-Id`), so one caller cannot use,
 * stream from or end another caller's session (issue 10 item 6).
 *
 * A session is bound when authz first learns of it:
 * - `initialize`: ext_proc sees the id in the response to an allowed `initialize` and binds it to
 *   the caller of that request (the normal case);
 * - `first_request`: a request carries an id this instance has never seen (the initialize was
 *   answered through another authz replica, or before a restart, or the binding expired) and is
 *   allowed: the id is bound to that caller (trust on first use).
 * Once bound, a request from anyone else carrying the id is refused.
 *
 * Bounded and expiring: an entry lives `idleMs` after its last use, and at most `max` sessions are
 * held (the least recently used goes first). Memory only: see docs/security.md for what that
 * means across restarts and replicas.
 */

export interface SessionOwner {
  iss: string;
  sub: string;
  agent: string | null;
}

export type SessionBinding = 'initialize' | 'first_request';

export interface SessionEntry {
  owner: SessionOwner;
  boundBy: SessionBinding;
  lastUsed: number;
}

/** What a request's session id means for its caller. */
export type SessionStanding =
  | { kind: 'none' }
  | { kind: 'unknown'; id: string }
  | { kind: 'owned'; id: string; entry: SessionEntry }
  | { kind: 'foreign'; id: string; entry: SessionEntry };

export function ownerOf(id: Pick<Identity, 'iss' | 'sub' | 'agent'>): SessionOwner {
  return { iss: id.iss, sub: id.sub, agent: id.agent ?? null };
}

export function sameOwner(a: SessionOwner, b: SessionOwner): boolean {
  return a.iss === b.iss && a.sub === b.sub && a.agent === b.agent;
}

/** Longest session id kept: MCP ids are short (UUIDs, tokens); a longer one is refused, not stored. */
export const MAX_SESSION_ID_LENGTH = 256;

export class SessionOwners {
  private readonly map = new Map<string, SessionEntry>();

  constructor(private readonly idleMs = 24 * 3600_000, private readonly max = 100_000) {}

  get size(): number { return this.map.size; }

  /** Where a request's session id stands for `caller`; refreshes the entry's expiry when it is the owner's. */
  standing(sessionId: string | null | undefined, caller: SessionOwner, now: number): SessionStanding {
    if (!sessionId) return { kind: 'none' };
    const entry = this.map.get(sessionId);
    if (!entry || now - entry.lastUsed > this.idleMs) {
      if (entry) this.map.delete(sessionId);
      return { kind: 'unknown', id: sessionId };
    }
    if (!sameOwner(entry.owner, caller)) return { kind: 'foreign', id: sessionId, entry };
    this.touch(sessionId, entry, now);
    return { kind: 'owned', id: sessionId, entry };
  }

  /**
   * Binds `sessionId` to `owner` unless someone else holds it. Returns the entry in force, whose
   * owner differs from `owner` when the id was already bound to another identity.
   */
  bind(sessionId: string, owner: SessionOwner, boundBy: SessionBinding, now: number): SessionEntry {
    const held = this.map.get(sessionId);
    if (held && now - held.lastUsed <= this.idleMs) {
      if (sameOwner(held.owner, owner)) this.touch(sessionId, held, now);
      return held;
    }
    if (held) this.map.delete(sessionId);
    this.evict(now);
    const entry: SessionEntry = { owner, boundBy, lastUsed: now };
    this.map.set(sessionId, entry);
    return entry;
  }

  /** Moves the entry to the young end, so insertion order stays least-recently-used order. */
  private touch(id: string, entry: SessionEntry, now: number): void {
    entry.lastUsed = now;
    this.map.delete(id);
    this.map.set(id, entry);
  }

  private evict(now: number): void {
    for (const [k, v] of this.map) {
      if (now - v.lastUsed > this.idleMs || this.map.size >= this.max) this.map.delete(k);
      else break;
    }
  }
}
