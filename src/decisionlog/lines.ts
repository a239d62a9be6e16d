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

/*
 * What the readers of decisions (`tollgate logs query|tail|stats|export`, `policy replay`) rely
 * on, checked once where a line is read. A record of the chain is a record whatever its fields
 * hold: verify hashes it as it is (chain integrity is separate from shape). But a reader cannot
 * show or filter `identity: null` or a `timestamp` that is a number, so such a record is skipped
 * and reported by the reader instead of breaking every consumer.
 */

interface Miss {
  /** Where in the value, e.g. `identity.team` or `result.reasons[0]`; '' for the value itself. */
  at: string;
  expected: string;
}
type Guard = (v: unknown) => Miss | null;

const is = (expected: string, ok: (v: unknown) => boolean): Guard => (v) => (ok(v) ? null : { at: '', expected });
const inside = (key: string, m: Miss): Miss => ({ at: m.at === '' ? key : m.at.startsWith('[') ? key + m.at : `${key}.${m.at}`, expected: m.expected });

const STRING = is('a string', (v) => typeof v === 'string');
const NUMBER = is('a number', (v) => typeof v === 'number' && Number.isFinite(v));
const BOOLEAN = is('true or false', (v) => typeof v === 'boolean');
const OBJECT = is('an object', isObject);
const TIME = is('an RFC 3339 time (a string)', (v) => typeof v === 'string' && Number.isFinite(Date.parse(v)));

/** null allowed too. */
function orNull(g: Guard): Guard {
  return (v) => {
    if (v === null) return null;
    const m = g(v);
    return m && m.at === '' ? { at: '', expected: `${m.expected} or null` } : m;
  };
}

/** Absent allowed too (fields added to the schema later, or optional ones). */
const optional = (g: Guard): Guard => (v) => (v === undefined ? null : g(v));

function oneOf(g1: Guard, g2: Guard, expected: string): Guard {
  return (v) => (g1(v) === null || g2(v) === null ? null : { at: '', expected });
}

function shape(fields: Record<string, Guard>): Guard {
  const list = Object.entries(fields);
  return (v) => {
    if (!isObject(v)) return { at: '', expected: 'an object' };
    for (const [key, g] of list) {
      const m = g(v[key]);
      if (m) return inside(key, m);
    }
    return null;
  };
}

function listOf(g: Guard): Guard {
  return (v) => {
    if (!Array.isArray(v)) return { at: '', expected: 'an array' };
    for (let i = 0; i < v.length; i++) {
      const m = g(v[i]);
      if (m) return inside(`[${i}]`, m);
    }
    return null;
  };
}

function valuesOf(g: Guard): Guard {
  return (v) => {
    if (!isObject(v)) return { at: '', expected: 'an object' };
    for (const [key, x] of Object.entries(v)) {
      const m = g(x);
      if (m) return inside(key, m);
    }
    return null;
  };
}

const NAME = optional(orNull(STRING));

const DECISION_SHAPE = shape({
  decision_id: STRING,
  timestamp: TIME,
  trace_id: optional(orNull(STRING)),
  labels: shape({ id: optional(STRING), app: optional(STRING), version: optional(STRING), instance: optional(STRING) }),
  path: optional(STRING),
  bundles: valuesOf(shape({ revision: STRING })),
  identity: shape({ sub: NAME, iss: NAME, team: NAME, agent: NAME, delegation: optional(listOf(OBJECT)) }),
  mcp: shape({
    server: STRING, namespace: STRING, method: NAME, tool: NAME,
    id: optional(orNull(oneOf(STRING, NUMBER, 'a string or a number'))), session_id: NAME, batch_size: optional(orNull(NUMBER)),
  }),
  input: optional(orNull(OBJECT)),
  result: shape({
    allow: BOOLEAN, reasons: listOf(STRING), http_status: optional(NUMBER), code: optional(orNull(NUMBER)), error: NAME,
    outcome: optional(is('forwarded, refused or not_executed', (v) => v === 'forwarded' || v === 'refused' || v === 'not_executed')),
    policy_allow: optional(orNull(BOOLEAN)), late_ms: optional(orNull(NUMBER)),
  }),
  budget: optional(orNull(listOf(OBJECT))),
  tokens: optional(orNull(OBJECT)),
  metrics: optional(OBJECT),
  erased: optional(listOf(STRING)),
  masked: optional(listOf(STRING)),
  folded: optional(listOf(shape({ path: STRING, from: STRING }))),
  upstream_credential: optional(STRING),
});

const ACCOUNTING_SHAPE = shape({
  timestamp: TIME,
  labels: optional(OBJECT),
  identity: shape({ sub: NAME, team: NAME, agent: NAME }),
  mcp: shape({ server: STRING, namespace: STRING, method: NAME, tool: NAME }),
  tokens: shape({ policy_cost: optional(NUMBER) }),
});

/**
 * Why a record of the chain cannot be read as a decision or accounting record (a field of the
 * wrong type, e.g. `identity: expected an object`), or null when readers can use it.
 */
export function entryShapeProblem(r: ChainedDecisionRecord | ChainedAccountingRecord): string | null {
  const m = (r.schema === ACCOUNTING_SCHEMA ? ACCOUNTING_SHAPE : DECISION_SHAPE)(r);
  return m ? `${m.at === '' ? 'record' : m.at}: expected ${m.expected}` : null;
}

/** A line as the readers of decisions take it. */
export type EntryLine =
  | { kind: 'entry'; record: ChainedDecisionRecord | ChainedAccountingRecord }
  /** A head or a checkpoint: a line of the log, but no record. */
  | { kind: 'other' }
  /** Not a line of a decision log: not JSON, or neither record, checkpoint nor head. */
  | { kind: 'unreadable'; problem: string }
  /** A record of the chain whose fields readers cannot use. */
  | { kind: 'malformed'; problem: string; seq: number };

export function readEntryLine(text: string): EntryLine {
  const p = parseLine(text);
  if (p.kind === 'invalid') return { kind: 'unreadable', problem: p.problem };
  if (p.kind === 'head' || p.kind === 'checkpoint') return { kind: 'other' };
  const problem = entryShapeProblem(p.record);
  return problem === null ? { kind: 'entry', record: p.record } : { kind: 'malformed', problem, seq: p.record.seq };
}

export interface SkippedLine {
  /** `file:line`, or where in a stream. */
  where: string;
  problem: string;
}

const plural = (n: number, one: string, many: string): string => `${n} ${n === 1 ? one : many}`;

/** Control, bidi, zero-width and replacement characters (a binary file's bytes in a JSON error) as \uXXXX, for a terminal. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufffd]/g;
const MAX_PROBLEM = 200;
function printableProblem(s: string): string {
  const t = s.replace(UNPRINTABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return t.length > MAX_PROBLEM ? `${t.slice(0, MAX_PROBLEM)}…` : t;
}

/**
 * Lines a reader of decisions passed over: counted, with where the first one is, so the reader
 * can say so (never silently) instead of answering as if the log were empty.
 */
export class SkippedLines {
  /** Lines that are lines of a decision log (records, heads, checkpoints), malformed records included. */
  logLines = 0;
  unreadable = 0;
  malformed = 0;
  /** The first unreadable line of all. */
  firstUnreadable: SkippedLine | null = null;
  /** Highest seq of the records read, malformed ones included (0: none). */
  maxSeq = 0;
  /** Skipped since the last report(): count and first. */
  private pending = { unreadable: 0, malformed: 0, firstUnreadable: null as SkippedLine | null, firstMalformed: null as SkippedLine | null };

  /** Classifies a line, counts what is skipped, and returns the record when there is one to read. */
  take(text: string, where: () => string): ChainedDecisionRecord | ChainedAccountingRecord | null {
    const e = readEntryLine(text);
    if (e.kind === 'entry') {
      this.logLines++;
      this.maxSeq = Math.max(this.maxSeq, e.record.seq);
      return e.record;
    }
    if (e.kind === 'other') this.logLines++;
    else if (e.kind === 'malformed') this.note('malformed', { where: where(), problem: e.problem }, e.seq);
    else this.note('unreadable', { where: where(), problem: e.problem });
    return null;
  }

  /** Counts a skipped line (`seq`: of a malformed record). */
  note(kind: 'unreadable' | 'malformed', line: SkippedLine, seq = 0): void {
    const at = { where: line.where, problem: printableProblem(line.problem) };
    const p = this.pending;
    if (kind === 'malformed') {
      this.maxSeq = Math.max(this.maxSeq, seq);
      this.logLines++;
      this.malformed++;
      p.malformed++;
      p.firstMalformed ??= at;
    } else {
      this.unreadable++;
      this.firstUnreadable ??= at;
      p.unreadable++;
      p.firstUnreadable ??= at;
    }
  }

  /** Lines were read, and not one was a line of a decision log (garbage, a binary file). */
  get nothingReadable(): boolean {
    return this.logLines === 0 && this.unreadable > 0;
  }

  /**
   * What was skipped since the last call (for a one-shot read: all of it), e.g. `skipped 1
   * malformed record (decisions-000001.jsonl:2: identity: expected an object)`; null if nothing.
   */
  report(): string | null {
    const p = this.pending;
    this.pending = { unreadable: 0, malformed: 0, firstUnreadable: null, firstMalformed: null };
    const at = (n: number, s: SkippedLine | null): string => (!s ? '' : n === 1 ? ` (${s.where}: ${s.problem})` : ` (the first at ${s.where}: ${s.problem})`);
    const parts: string[] = [];
    if (p.malformed > 0) parts.push(`${plural(p.malformed, 'malformed record', 'malformed records')}${at(p.malformed, p.firstMalformed)}`);
    if (p.unreadable > 0) parts.push(`${plural(p.unreadable, 'unreadable line', 'unreadable lines')}${at(p.unreadable, p.firstUnreadable)}`);
    return parts.length === 0 ? null : `skipped ${parts.join(' and ')}`;
  }
}
