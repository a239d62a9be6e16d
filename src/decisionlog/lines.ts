import { isObject } from '../util/object.js';
import {
  ACCOUNTING_SCHEMA, CHECKPOINT_SCHEMA, DECISION_RECORD_SCHEMA, HEAD_SCHEMA,
  type ChainedAccountingRecord, type ChainedDecisionRecord, type CheckpointLine, type HeadLine,
} from './types.js';

/** A record of the chain (decision or accounting), or null. */
export function chained(p: ParsedLine): ChainedDecisionRecord | ChainedAccountingRecord | null {
  return p.kind === 'record' || p.kind === 'accounting' ? p.record : null;
}

/** What one line of a decision log file is. */
export type ParsedLine =
  | { kind: 'record'; record: ChainedDecisionRecord }
  | { kind: 'accounting'; record: ChainedAccountingRecord }
  | { kind: 'checkpoint'; checkpoint: CheckpointLine }
  | { kind: 'head'; head: HeadLine }
  | { kind: 'invalid'; problem: string };

const HEX64 = /^[0-9a-f]{64}$/;

const isSeq = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Classifies an already parsed JSON value; shape checks cover what the chain and readers rely on. */
export function classify(v: unknown): ParsedLine {
  if (!isObject(v)) return { kind: 'invalid', problem: 'not a JSON object' };
  if (v.schema === DECISION_RECORD_SCHEMA || v.schema === ACCOUNTING_SCHEMA) {
    if (!isSeq(v.seq) || v.seq < 1) return { kind: 'invalid', problem: 'record without a valid seq' };
    if (typeof v.prev_hash !== 'string' || !HEX64.test(v.prev_hash)) return { kind: 'invalid', problem: 'record without a valid prev_hash' };
    if (v.schema === ACCOUNTING_SCHEMA) {
      const t = v.tokens as Record<string, unknown> | undefined;
      if (typeof v.decision_id !== 'string' || !isObject(t) || !isSeq(t.response) || !isSeq(t.request)) return { kind: 'invalid', problem: 'accounting record without decision_id or token counts' };
      return { kind: 'accounting', record: v as unknown as ChainedAccountingRecord };
    }
    return { kind: 'record', record: v as unknown as ChainedDecisionRecord };
  }
  if (v.type === 'checkpoint' && v.schema === CHECKPOINT_SCHEMA) {
    if (!isSeq(v.seq) || typeof v.hash !== 'string' || typeof v.jws !== 'string' || typeof v.kid !== 'string') {
      return { kind: 'invalid', problem: 'checkpoint missing seq, hash, kid or jws' };
    }
    return { kind: 'checkpoint', checkpoint: v as unknown as CheckpointLine };
  }
  if (v.type === 'head' && v.schema === HEAD_SCHEMA) {
    if (!isSeq(v.next_seq) || typeof v.prev_hash !== 'string') return { kind: 'invalid', problem: 'head missing next_seq or prev_hash' };
    return { kind: 'head', head: v as unknown as HeadLine };
  }
  return { kind: 'invalid', problem: 'neither a decision record, a checkpoint nor a file head' };
}

export function parseLine(text: string): ParsedLine {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    return { kind: 'invalid', problem: `not valid JSON (${(e as Error).message})` };
  }
  return classify(v);
}
