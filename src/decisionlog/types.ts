import type { Decision, PolicyInput } from '../contract/policy.js';

export const DECISION_RECORD_SCHEMA = 'tollgate.decision/v1';

/**
 * One record per decision. Field names follow OPA's decision-log event where they mean the same
 * thing (decision_id, path, input, result, bundles, labels, timestamp, metrics, erased, masked).
 */
export interface DecisionRecord {
  schema: typeof DECISION_RECORD_SCHEMA;
  decision_id: string;
  timestamp: string;
  trace_id: string | null;
  labels: { id: string; app: 'tollgate'; version: string; instance: string };
  path: string;
  bundles: Record<string, { revision: string }>;
  identity: {
    sub: string | null; iss: string | null; team: string | null; agent: string | null;
    delegation: Array<Record<string, unknown>>;
  };
  mcp: {
    server: string; namespace: string; method: string | null; tool: string | null;
    id: string | number | null; session_id: string | null; batch_size: number | null;
  };
  /** The policy input after masking, with the copies listed in `folded` left out. */
  input: PolicyInput | null;
  result: {
    allow: boolean; reasons: string[]; http_status: number;
    /** Stable error code for denies (JSON-RPC error.code), null on allow. */
    code: number | null;
    /** Set when the call never reached policy (bad token, malformed body, ...). */
    error: string | null;
    /**
     * What happened to the call (set by authz since issue 10): `forwarded` to the server, `refused`,
     * or `not_executed` although policy allowed it (batch refused as a whole, answer after Envoy's
     * deadline). Absent in records written before.
     */
    outcome?: 'forwarded' | 'refused' | 'not_executed';
    /** The policy's own verdict, which `allow` may not be (not executed); null if never judged. */
    policy_allow?: boolean | null;
    /** ms past Envoy's ext_authz deadline when authz answered; null when in time. */
    late_ms?: number | null;
  };
  /** `warning`: a `warn` budget this call found used up (the call went ahead). */
  budget: Array<{ name: string; limit: number; used: number; remaining: number; warning?: true }> | null;
  /** `policy_cost`: the policy's `cost`, charged to the caller's budgets with the arguments' tokens. */
  tokens: { request: number; response: number | null; policy_cost?: number } | null;
  metrics: { timer_eval_ns: number; timer_total_ns: number };
  erased: string[];
  masked: string[];
  /** Id (jti) of the per-caller upstream credential the call was sent with (docs/identity.md). */
  upstream_credential?: string;
  /**
   * Copies inside `input` left out because they equalled another value of it after masking
   * (fold.ts; `unfoldRecord` puts them back). Absent when nothing was folded, and in records
   * written before folding existed, whose input holds every copy.
   */
  folded?: Array<{ path: string; from: string }>;
  /** Hash chain (filled by the sink): SHA-256 over RFC 8785 JSON of the previous record. */
  seq?: number;
  prev_hash?: string;
}

export type DecisionRecordDraft = Omit<DecisionRecord, 'seq' | 'prev_hash'>;

/**
 * Where records go. append() returns once the record is in the OS (survives kill -9 of authz):
 * the Check handler calls it before answering Envoy.
 */
export interface DecisionSink {
  append(record: DecisionRecordDraft): void;
  /** Appends an accounting record (after the response); never throws. Optional for older sinks. */
  account?(record: AccountingRecordDraft): void;
  close(): Promise<void>;
}

export type { Decision };

/** A record as written: the draft plus its place in the hash chain. */
export type ChainedDecisionRecord = DecisionRecordDraft & { seq: number; prev_hash: string };

export const ACCOUNTING_SCHEMA = 'tollgate.accounting/v1';

/**
 * What an allowed call cost, known only once its response has flowed back (ext_proc): written to
 * the same hash chain as the decisions, linked to its decision by `decision_id`. It repeats the
 * identity and the call's server and tool so spend can be summed without joining.
 */
export interface AccountingRecord {
  schema: typeof ACCOUNTING_SCHEMA;
  type: 'response_tokens';
  decision_id: string;
  timestamp: string;
  labels: DecisionRecord['labels'];
  identity: { sub: string | null; team: string | null; agent: string | null };
  mcp: { server: string; namespace: string; method: string | null; tool: string | null };
  /** `request`: tokens of the arguments (as charged at Check); `response`: of the results. Default encoding (o200k_base). */
  tokens: { request: number; response: number };
  seq?: number;
  prev_hash?: string;
}

export type AccountingRecordDraft = Omit<AccountingRecord, 'seq' | 'prev_hash'>;
export type ChainedAccountingRecord = AccountingRecordDraft & { seq: number; prev_hash: string };

/** Anything the chain holds: decisions and accounting records share one seq and one chain. */
export type ChainedLogEntry = ChainedDecisionRecord | ChainedAccountingRecord;
export type LogEntryDraft = DecisionRecordDraft | AccountingRecordDraft;

export function isAccounting(e: ChainedLogEntry): e is ChainedAccountingRecord {
  return e.schema === ACCOUNTING_SCHEMA;
}

export const CHECKPOINT_SCHEMA = 'tollgate.checkpoint/v1';
export const HEAD_SCHEMA = 'tollgate.decision-head/v1';

/**
 * Signed statement "the chain up to `seq` ends in `hash`". `count` is the number of records the
 * chain holds up to `seq` (seq starts at 1, so it equals seq; a verifier cross-checks it).
 */
export interface CheckpointPayload {
  type: 'checkpoint';
  schema: typeof CHECKPOINT_SCHEMA;
  seq: number;
  hash: string;
  count: number;
  timestamp: string;
}

/** The checkpoint line: the payload in clear (for people and grep) and as a compact JWS. */
export interface CheckpointLine extends CheckpointPayload {
  kid: string;
  jws: string;
}

/** Why a file was started. */
export type HeadReason = 'genesis' | 'rotate' | 'recover';

/**
 * First line of every log file: where the chain stands when the file starts. Not part of the hash
 * chain (records carry the links); it lets a reader start at any file and tells a verifier why a
 * file was started, e.g. after a crash left a torn line at the end of the previous file.
 */
export interface HeadLine {
  type: 'head';
  schema: typeof HEAD_SCHEMA;
  file: string;
  /** seq the first record of this file will carry. */
  next_seq: number;
  /** prev_hash the first record of this file will carry. */
  prev_hash: string;
  prev_file: string | null;
  reason: HeadReason;
  timestamp: string;
  /** With reason "recover": the incomplete last line the writer found in prev_file. */
  torn: { file: string; offset: number; bytes: number } | null;
  /**
   * With reason "recover": the file being written was deleted or truncated under the writer
   * (tampering); `seq` is where the chain stood, `bytes_*` what was written and what was left.
   * Absent otherwise.
   */
  lost?: { file: string; reason: 'deleted' | 'truncated'; bytes_written: number; bytes_found: number; seq: number } | null;
  /**
   * Identity of the log, chosen at genesis and repeated in every head: names the log's anchors
   * on NATS. Absent in logs started before it existed (then chosen at the next file).
   */
  log_id?: string;
}
