import type { KV } from '@nats-io/kv';
import { z } from 'zod';
import { statementOf, verifyEntry, type ApproverKey, type PinEntry, type PinStatement } from './approval.js';
import { PINS_BUCKET, SEEN_BUCKET, parseToolKey, serverKeys, toolKey } from './buckets.js';
import { definitionHash, type ToolDefinition } from './definition.js';
import type { PinnedTool, SeenTool } from './review.js';

/**
 * Reading the two pin buckets for review (`tollgate tools pending|diff|approve|revoke`, MCPServer
 * status): what servers offer, and the pins in force. Every entry goes through the parsers below, so
 * an entry that is not what authz or an approver wrote is reported with its bucket and key instead
 * of surfacing later as `undefined` or a bare JSON error. Display only: authz verifies pins itself
 * before enforcing.
 */

/** An entry of a pin bucket that is not what Tollgate writes there. */
export class MalformedEntryError extends Error {
  constructor(readonly bucket: string, readonly key: string, readonly problem: string) {
    super(`${bucket} entry ${key}${describeKey(key)} is malformed: ${problem}`);
  }
}

/** A malformed entry met while listing a bucket: reported, not silently left out. */
export interface MalformedEntry { bucket: string; key: string; error: string }

function describeKey(key: string): string {
  const where = parseToolKey(key);
  return where ? ` (server ${JSON.stringify(where.server)}, tool ${JSON.stringify(where.tool)})` : '';
}

/** A zod issue path as a JSON path: definition.inputSchema, findings[0].kind. */
function jsonPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `${out ? '.' : ''}${String(p)}`;
  return out || '(top level)';
}

/** One line: each problem with its JSON path; an absent member is called missing. */
function issues(e: z.ZodError): string {
  return e.issues.map((i) => `${jsonPath(i.path)}: ${i.code === 'invalid_type' && /received undefined$/.test(i.message) ? `missing (${i.expected} expected)` : i.message}`).join('; ');
}

/** A member that must be present, with any JSON value (null included). */
const present = z.custom<unknown>((v) => v !== undefined, 'is required (null when the tool has none)');

const definitionSchema = z.object({
  name: z.string().min(1),
  title: z.string().nullable(),
  description: z.string().nullable(),
  inputSchema: present,
  outputSchema: present,
  annotations: present,
});

const seenSchema = z.looseObject({
  server: z.string(),
  tool: z.string(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be a SHA-256 in hex'),
  definition: definitionSchema,
  findings: z.array(z.looseObject({ kind: z.string(), detail: z.string() })),
  seen_at: z.string(),
});

const pinSchema = z.object({
  jws: z.string().regex(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+$/, 'must be a compact JWS (three base64url parts)'),
  definition: z.union([definitionSchema, z.null()]),
});

function json(bucket: string, key: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new MalformedEntryError(bucket, key, `not JSON (${(e as Error).message})`);
  }
}

/** The key's server and tool; entries under keys Tollgate never writes are malformed too. */
function whereOf(bucket: string, key: string): { server: string; tool: string } {
  const where = parseToolKey(key);
  if (!where || toolKey(where.server, where.tool) !== key) throw new MalformedEntryError(bucket, key, 'the key is not <base64url server>.<base64url tool>');
  return where;
}

/** A tool-seen entry (what authz saw a server offer) stored under `key`; throws MalformedEntryError. */
export function parseSeenEntry(key: string, text: string): SeenTool {
  const where = whereOf(SEEN_BUCKET, key);
  const r = seenSchema.safeParse(json(SEEN_BUCKET, key, text));
  if (!r.success) throw new MalformedEntryError(SEEN_BUCKET, key, issues(r.error));
  const s = r.data;
  if (s.server !== where.server || s.tool !== where.tool) throw new MalformedEntryError(SEEN_BUCKET, key, `it is about server ${JSON.stringify(s.server)}, tool ${JSON.stringify(s.tool)}`);
  if (s.definition.name !== s.tool) throw new MalformedEntryError(SEEN_BUCKET, key, `definition.name is ${JSON.stringify(s.definition.name)}, not the tool's name`);
  try {
    definitionHash(s.definition as ToolDefinition);
  } catch (e) {
    throw new MalformedEntryError(SEEN_BUCKET, key, `definition has no canonical JSON form (${(e as Error).message})`);
  }
  return s as unknown as SeenTool;
}

/** A pin entry (a signed statement and, for an approval, its definition); throws MalformedEntryError. */
export function parsePinEntry(key: string, text: string): PinEntry {
  whereOf(PINS_BUCKET, key);
  const r = pinSchema.safeParse(json(PINS_BUCKET, key, text));
  if (!r.success) throw new MalformedEntryError(PINS_BUCKET, key, issues(r.error));
  return r.data as PinEntry;
}

/**
 * The statement a pin entry carries, read without verifying its signature (review display, and
 * the hash a revocation withdraws); throws MalformedEntryError.
 */
export function pinStatementOf(key: string, entry: PinEntry): PinStatement {
  const where = whereOf(PINS_BUCKET, key);
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(entry.jws.split('.')[1] ?? '', 'base64url').toString('utf8'));
  } catch {
    throw new MalformedEntryError(PINS_BUCKET, key, 'the JWS payload is not JSON');
  }
  const s = statementOf(payload);
  if (!s) throw new MalformedEntryError(PINS_BUCKET, key, 'the JWS payload is not a tollgate.tool-pin/v1 statement');
  if (s.server !== where.server || s.tool !== where.tool) throw new MalformedEntryError(PINS_BUCKET, key, `its statement is about server ${JSON.stringify(s.server)}, tool ${JSON.stringify(s.tool)}`);
  return s;
}

async function getText(kv: KV, key: string): Promise<string | null> {
  const e = await kv.get(key);
  return e && e.operation === 'PUT' ? e.string() : null;
}

/** What authz saw SERVER offer as TOOL; null when nothing was seen; throws MalformedEntryError. */
export async function getSeen(kv: KV, server: string, tool: string): Promise<SeenTool | null> {
  const key = toolKey(server, tool);
  const text = await getText(kv, key);
  return text === null ? null : parseSeenEntry(key, text);
}

/** The pin entry of SERVER / TOOL; null when there is none; throws MalformedEntryError. */
export async function getPinEntry(kv: KV, server: string, tool: string): Promise<{ entry: PinEntry; statement: PinStatement } | null> {
  const key = toolKey(server, tool);
  const text = await getText(kv, key);
  if (text === null) return null;
  const entry = parsePinEntry(key, text);
  return { entry, statement: pinStatementOf(key, entry) };
}

async function entries<T>(kv: KV, bucket: string, parse: (key: string, text: string) => T, filter: string | undefined, malformed: MalformedEntry[]): Promise<T[]> {
  const out: T[] = [];
  for await (const key of await kv.keys(filter)) {
    const text = await getText(kv, key);
    if (text === null) continue;
    try {
      out.push(parse(key, text));
    } catch (e) {
      if (!(e instanceof MalformedEntryError)) throw e;
      malformed.push({ bucket, key, error: e.message });
    }
  }
  return out;
}

/** Tool definitions servers offered (as authz saw them), of one server or all, and the entries that are malformed. */
export async function readSeenReport(kv: KV, server?: string): Promise<{ tools: SeenTool[]; malformed: MalformedEntry[] }> {
  const malformed: MalformedEntry[] = [];
  const tools = await entries(kv, SEEN_BUCKET, parseSeenEntry, server === undefined ? undefined : serverKeys(server), malformed);
  return { tools: server === undefined ? tools : tools.filter((s) => s.server === server), malformed };
}

/** Tool definitions servers offered (as authz saw them), of one server or all; malformed entries left out. */
export async function readSeen(kv: KV, server?: string): Promise<SeenTool[]> {
  return (await readSeenReport(kv, server)).tools;
}

/**
 * Pins in force, of one server or all, and the entries that are malformed. With `keys`, only
 * statements that verify (revocations and bad signatures are not pins); without, statements are
 * read unverified.
 */
export async function readPinnedReport(kv: KV, keys: readonly ApproverKey[] | null, server?: string): Promise<{ pins: PinnedTool[]; malformed: MalformedEntry[] }> {
  const malformed: MalformedEntry[] = [];
  const raw = await entries(kv, PINS_BUCKET, (key, text) => {
    const entry = parsePinEntry(key, text);
    return { key, entry, statement: pinStatementOf(key, entry) };
  }, server === undefined ? undefined : serverKeys(server), malformed);
  const pins: PinnedTool[] = [];
  for (const { key, entry, statement } of raw) {
    const where = parseToolKey(key)!;
    if (server !== undefined && where.server !== server) continue;
    if (keys) {
      const r = await verifyEntry(entry, where.server, where.tool, keys);
      if (!r.ok || !r.pin) continue;
      pins.push({ server: where.server, tool: where.tool, sha256: r.pin.sha256, definition: r.pin.definition, approver: r.pin.approver, at: r.pin.approved_at });
    } else if (statement.action === 'approve') {
      pins.push({ server: where.server, tool: where.tool, sha256: statement.sha256, definition: entry.definition, approver: statement.approver, at: statement.at });
    }
  }
  return { pins, malformed };
}

/** Pins in force, of one server or all (see readPinnedReport); malformed entries left out. */
export async function readPinned(kv: KV, keys: readonly ApproverKey[] | null, server?: string): Promise<PinnedTool[]> {
  return (await readPinnedReport(kv, keys, server)).pins;
}
