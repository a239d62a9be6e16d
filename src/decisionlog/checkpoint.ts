import { sign as cryptoSign } from 'node:crypto';
import { compactVerify, importJWK, type JWK } from 'jose';
import { canonicalize } from './canonical.js';
import type { ChainHead } from './chain.js';
import type { SigningKey } from './keys.js';
import { CHECKPOINT_SCHEMA, type CheckpointLine, type CheckpointPayload } from './types.js';

/**
 * Signed checkpoints. The JWS is produced synchronously with node:crypto so a checkpoint can be
 * written inline with the append that triggers it (no window where a rotation or a crash
 * separates a checkpoint from its place in the file); it is a standard compact JWS
 * (RFC 7515, payload = RFC 8785 JSON of the CheckpointPayload) and is verified with `jose`.
 */

export function checkpointPayload(head: ChainHead, now: Date): CheckpointPayload {
  return { type: 'checkpoint', schema: CHECKPOINT_SCHEMA, seq: head.seq, hash: head.hash, count: head.seq, timestamp: now.toISOString() };
}

const b64u = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

export function signCheckpoint(payload: CheckpointPayload, key: SigningKey): CheckpointLine {
  const header = b64u(JSON.stringify({ alg: key.alg, kid: key.kid, typ: 'tollgate-checkpoint+jws' }));
  const body = b64u(canonicalize(payload));
  const input = Buffer.from(`${header}.${body}`, 'ascii');
  const sig = key.alg === 'EdDSA'
    ? cryptoSign(null, input, key.privateKey)
    : cryptoSign(key.alg === 'ES384' ? 'sha384' : 'sha256', input, { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
  return { ...payload, kid: key.kid, jws: `${header}.${body}.${b64u(sig)}` };
}

/** Public keys a verifier trusts, by kid. */
export type TrustedKeys = Map<string, JWK>;

/** Reads a JWK or a JWK Set (`{keys: [...]}`) document. Keys without kid get their thumbprint. */
export function trustedKeysFrom(doc: unknown, thumbprint: (jwk: JWK) => string): TrustedKeys {
  const out: TrustedKeys = new Map();
  const list = typeof doc === 'object' && doc !== null && Array.isArray((doc as { keys?: unknown }).keys)
    ? (doc as { keys: unknown[] }).keys
    : [doc];
  for (const k of list) {
    if (typeof k !== 'object' || k === null) continue;
    const jwk = k as JWK;
    if ('d' in jwk) delete (jwk as Record<string, unknown>).d; // only ever verify with the public part
    out.set(jwk.kid ?? thumbprint(jwk), jwk);
  }
  return out;
}

export type CheckpointCheck =
  | { ok: true; payload: CheckpointPayload }
  | { ok: false; problem: string };

const PAYLOAD_FIELDS = ['type', 'schema', 'seq', 'hash', 'count', 'timestamp'] as const;

/**
 * Checks a checkpoint line's signature against the trusted keys and that the fields shown in
 * clear are the ones signed. On success the signed payload is what the caller must use.
 */
export async function verifyCheckpoint(line: CheckpointLine, keys: TrustedKeys): Promise<CheckpointCheck> {
  const jwk = keys.get(line.kid);
  if (!jwk) return { ok: false, problem: `signed with key ${line.kid}, which is not a trusted key` };
  let payload: CheckpointPayload;
  try {
    const alg = typeof jwk.alg === 'string' ? jwk.alg : 'EdDSA';
    const key = await importJWK(jwk, alg);
    const res = await compactVerify(line.jws, key, { algorithms: [alg] });
    if (res.protectedHeader.kid !== line.kid) return { ok: false, problem: `the JWS names key ${res.protectedHeader.kid}, the line ${line.kid}` };
    payload = JSON.parse(new TextDecoder().decode(res.payload)) as CheckpointPayload;
  } catch (e) {
    return { ok: false, problem: `bad signature (${(e as Error).message})` };
  }
  for (const f of PAYLOAD_FIELDS) {
    if (payload[f] !== line[f]) return { ok: false, problem: `the line says ${f}=${JSON.stringify(line[f])} but the signed payload says ${JSON.stringify(payload[f])}` };
  }
  if (payload.count !== payload.seq) return { ok: false, problem: `signed count ${payload.count} does not match seq ${payload.seq}` };
  return { ok: true, payload };
}
