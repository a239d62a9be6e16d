import type { KeyObject } from 'node:crypto';
import { CompactSign, compactVerify, decodeProtectedHeader } from 'jose';
import { definitionHash, type ToolDefinition } from './definition.js';
import type { Pin } from './store.js';
import { isObject } from '../util/object.js';

/**
 * Signed approvals and revocations of tool pins. An approver signs (compact JWS) the server, tool
 * and definition hash with their own key; authz accepts a pin only if a trusted approver key
 * verifies it and the stored definition hashes to what was signed. So anyone who can write the pin
 * bucket but holds no approver key can remove pins (which only hides tools) but never add one.
 */

export const PIN_SCHEMA = 'tollgate.tool-pin/v1';

export interface PinStatement {
  schema: typeof PIN_SCHEMA;
  action: 'approve' | 'revoke';
  server: string;
  tool: string;
  /** Definition hash approved (approve) or withdrawn (revoke). */
  sha256: string;
  approver: string;
  at: string;
  accept_findings: boolean;
}

/** A pin bucket entry: the signed statement and, for an approval, the definition it covers. */
export interface PinEntry {
  jws: string;
  definition: ToolDefinition | null;
}

export interface ApproverKey { key: KeyObject; kid: string; alg: string }

export async function signStatement(s: PinStatement, key: ApproverKey): Promise<string> {
  return new CompactSign(new TextEncoder().encode(JSON.stringify(s))).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'tollgate-pin+jws' }).sign(key.key);
}

export type Verified =
  | { ok: true; statement: PinStatement; kid: string; pin: Pin | null }
  | { ok: false; error: string };

/** A decoded JWS payload as a pin statement; null when it is not one. */
export function statementOf(v: unknown): PinStatement | null {
  if (!isObject(v) || v.schema !== PIN_SCHEMA || (v.action !== 'approve' && v.action !== 'revoke')) return null;
  for (const k of ['server', 'tool', 'sha256', 'approver', 'at']) if (typeof v[k] !== 'string') return null;
  if (typeof v.accept_findings !== 'boolean') return null;
  return v as unknown as PinStatement;
}

/** Verifies an entry stored under (server, tool); never throws. */
export async function verifyEntry(raw: unknown, server: string, tool: string, keys: readonly ApproverKey[]): Promise<Verified> {
  if (!isObject(raw) || typeof raw.jws !== 'string') return { ok: false, error: 'entry is not {"jws": ..., "definition": ...}' };
  let kid: string | undefined;
  try {
    kid = decodeProtectedHeader(raw.jws).kid;
  } catch (e) {
    return { ok: false, error: `not a JWS: ${(e as Error).message}` };
  }
  const candidates = keys.filter((k) => kid === undefined || k.kid === kid);
  if (candidates.length === 0) return { ok: false, error: `signed with key ${kid ?? '(no kid)'}, which is not a trusted approver key` };
  for (const k of candidates) {
    let payload: Uint8Array;
    try {
      payload = (await compactVerify(raw.jws, k.key, { algorithms: [k.alg] })).payload;
    } catch {
      continue;
    }
    let s: PinStatement | null;
    try {
      s = statementOf(JSON.parse(new TextDecoder().decode(payload)));
    } catch {
      s = null;
    }
    if (!s) return { ok: false, error: `signed payload is not a ${PIN_SCHEMA} statement` };
    if (s.server !== server || s.tool !== tool) return { ok: false, error: `statement is for ${s.server}/${s.tool}, stored under ${server}/${tool}` };
    if (s.action === 'revoke') return { ok: true, statement: s, kid: k.kid, pin: null };
    const def = raw.definition;
    if (!isObject(def) || def.name !== tool) return { ok: false, error: 'approval carries no definition of this tool' };
    const sha = definitionHash(def as unknown as ToolDefinition);
    if (sha !== s.sha256) return { ok: false, error: `stored definition hashes to ${sha}, the approval signed ${s.sha256}` };
    return {
      ok: true, statement: s, kid: k.kid,
      pin: { server, tool, sha256: s.sha256, definition: def as unknown as ToolDefinition, approver: s.approver, approved_at: s.at, accept_findings: s.accept_findings },
    };
  }
  return { ok: false, error: `signature does not verify with approver key ${kid ?? '(any)'}` };
}
