import type { KV } from '@nats-io/kv';
import { verifyEntry, type ApproverKey, type PinEntry, type PinStatement } from './approval.js';
import { parseToolKey, serverKeys } from './buckets.js';
import type { PinnedTool, SeenTool } from './review.js';

/**
 * Reading the two pin buckets for review (`tollgate tools pending|diff`, MCPServer status): what
 * servers offer, and the pins in force. Display only: authz verifies pins itself before enforcing.
 */

async function entries<T>(kv: KV, parse: (key: string, value: unknown) => T | null, filter?: string): Promise<T[]> {
  const out: T[] = [];
  for await (const key of await kv.keys(filter)) {
    const e = await kv.get(key);
    if (!e || e.operation !== 'PUT') continue;
    let v: unknown;
    try { v = e.json(); } catch { continue; }
    const x = parse(key, v);
    if (x) out.push(x);
  }
  return out;
}

const seenOf = (_key: string, v: unknown): SeenTool | null => {
  const s = v as SeenTool;
  return s && typeof s.server === 'string' && typeof s.tool === 'string' && typeof s.sha256 === 'string' ? s : null;
};

/** Tool definitions servers offered (as authz saw them), of one server or all. */
export function readSeen(kv: KV, server?: string): Promise<SeenTool[]> {
  return entries(kv, seenOf, server === undefined ? undefined : serverKeys(server)).then((l) => (server === undefined ? l : l.filter((s) => s.server === server)));
}

/**
 * Pins in force, of one server or all. With `keys`, only statements that verify (revocations and
 * bad signatures are not pins); without, statements are read unverified.
 */
export async function readPinned(kv: KV, keys: readonly ApproverKey[] | null, server?: string): Promise<PinnedTool[]> {
  const raw = await entries(kv, (key, v) => ({ key, v }), server === undefined ? undefined : serverKeys(server));
  const out: PinnedTool[] = [];
  for (const { key, v } of raw) {
    const where = parseToolKey(key);
    if (!where || (server !== undefined && where.server !== server)) continue;
    const e = v as PinEntry;
    if (keys) {
      const r = await verifyEntry(e, where.server, where.tool, keys);
      if (!r.ok || !r.pin) continue;
      out.push({ server: where.server, tool: where.tool, sha256: r.pin.sha256, definition: r.pin.definition, approver: r.pin.approver, at: r.pin.approved_at });
    } else {
      try {
        const s = JSON.parse(Buffer.from(e.jws.split('.')[1] ?? '', 'base64url').toString('utf8')) as PinStatement;
        if (s.action === 'approve') out.push({ server: where.server, tool: where.tool, sha256: s.sha256, definition: e.definition, approver: s.approver, at: s.at });
      } catch { /* unreadable entry: not a pin */ }
    }
  }
  return out;
}
