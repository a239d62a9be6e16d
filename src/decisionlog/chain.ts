import { createHash } from 'node:crypto';
import { canonicalize, canonicalizeWith } from './canonical.js';
import type { ChainedLogEntry, LogEntryDraft } from './types.js';

/**
 * The hash chain: record n carries seq n (from 1) and prev_hash = SHA-256 (hex) of the RFC 8785
 * encoding of record n-1 as written, including record n-1's own seq and prev_hash. The first
 * record's prev_hash is GENESIS_HASH. Editing, dropping or moving any record breaks the link of
 * the record after it.
 */

export const GENESIS_HASH = '0'.repeat(64);

/** Where the chain stands: the last record's seq (0 before the first) and its hash. */
export interface ChainHead {
  seq: number;
  hash: string;
}

export const GENESIS: ChainHead = Object.freeze({ seq: 0, hash: GENESIS_HASH });

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** Hash of a record as the chain defines it (for a line read back from disk). */
export function recordHash(record: unknown): string {
  return sha256Hex(canonicalize(record));
}

export interface ChainedEntry {
  record: ChainedLogEntry;
  /** The canonical JSON text, without newline: what is hashed and written. */
  line: string;
  /** `line` + "\n" in UTF-8, encoded once for both the hash and the write. */
  bytes: Buffer;
  hash: string;
}

/** Links a draft to the chain: canonicalised once, and the same bytes are hashed and written. */
export function chainRecord(draft: LogEntryDraft, head: ChainHead): ChainedEntry {
  const link = { seq: head.seq + 1, prev_hash: head.hash };
  const line = canonicalizeWith(draft as unknown as Record<string, unknown>, link);
  const bytes = Buffer.from(line + '\n', 'utf8');
  const hash = createHash('sha256').update(bytes.subarray(0, bytes.length - 1)).digest('hex');
  return { record: { ...draft, ...link } as ChainedLogEntry, line, bytes, hash };
}

export function advance(entry: ChainedEntry): ChainHead {
  return { seq: entry.record.seq, hash: entry.hash };
}
