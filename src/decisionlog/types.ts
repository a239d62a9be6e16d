import type { Decision, PolicyInput } from '../policy/types.js';

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
  /** The policy input after masking. */
  input: PolicyInput | null;
  result: {
    allow: boolean; reasons: string[]; http_status: number;
    /** Stable error code for denies (JSON-RPC error.code), null on allow. */
    code: number | null;
    /** Set when the call never reached policy (bad token, malformed body, ...). */
    error: string | null;
  };
  budget: Array<{ name: string; limit: number; used: number; remaining: number }> | null;
  tokens: { request: number; response: number | null } | null;
  metrics: { timer_eval_ns: number; timer_total_ns: number };
  erased: string[];
  masked: string[];
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
  close(): Promise<void>;
}

export type { Decision };
