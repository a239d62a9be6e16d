import type { ChainedDecisionRecord } from '../decisionlog/types.js';

/**
 * Decision records as OpenTelemetry log records, in the OTLP/JSON encoding (ExportLogsServiceRequest
 * as sent to `/v1/logs`): the body is the record itself, the attributes the fields a pipeline
 * filters on, named after the OTel semantic conventions where one exists (MCP, GenAI, user,
 * error) and `tollgate.*` otherwise. Pure. Field mapping: docs/siem.md.
 */

export type OtlpAnyValue =
  | { stringValue: string } | { boolValue: boolean } | { intValue: string } | { doubleValue: number }
  | { arrayValue: { values: OtlpAnyValue[] } } | { kvlistValue: { values: OtlpKeyValue[] } };
export interface OtlpKeyValue { key: string; value: OtlpAnyValue }

export interface OtlpLogRecord {
  timeUnixNano: string;
  observedTimeUnixNano: string;
  severityNumber: number;
  severityText: string;
  eventName: string;
  body: OtlpAnyValue;
  attributes: OtlpKeyValue[];
  traceId?: string;
}

export interface OtlpLogsRequest {
  resourceLogs: Array<{
    resource: { attributes: OtlpKeyValue[] };
    scopeLogs: Array<{ scope: { name: string; version: string }; logRecords: OtlpLogRecord[] }>;
  }>;
}

/** OTLP's severity numbers: INFO is 9, WARN 13, ERROR 17. */
const INFO = 9;
const WARN = 13;
const ERROR = 17;

/** Any JSON value as an OTLP AnyValue (integers as intValue strings, as OTLP/JSON writes int64). */
export function anyValue(v: unknown): OtlpAnyValue {
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (typeof v === 'number') return Number.isSafeInteger(v) ? { intValue: String(v) } : { doubleValue: v };
  if (Array.isArray(v)) return { arrayValue: { values: v.map(anyValue) } };
  if (v !== null && typeof v === 'object') return { kvlistValue: { values: Object.entries(v).filter(([, x]) => x !== undefined).map(([key, x]) => ({ key, value: anyValue(x) })) } };
  // null: OTLP has no null; an empty value is what the spec's JSON mapping uses.
  return { stringValue: '' };
}

function attributes(r: ChainedDecisionRecord): OtlpKeyValue[] {
  const out: OtlpKeyValue[] = [];
  const put = (key: string, v: string | number | boolean | null | undefined): void => {
    if (v === null || v === undefined || v === '') return;
    out.push({ key, value: anyValue(v) });
  };
  put('tollgate.decision', r.result.allow ? 'allow' : 'deny');
  put('tollgate.decision_id', r.decision_id);
  put('tollgate.server', r.mcp.server);
  put('tollgate.namespace', r.mcp.namespace);
  put('tollgate.team', r.identity.team);
  put('tollgate.agent', r.identity.agent);
  put('tollgate.policy_revision', Object.values(r.bundles)[0]?.revision);
  put('tollgate.reasons', r.result.reasons.join('; '));
  put('tollgate.instance', r.labels.instance);
  put('tollgate.seq', r.seq);
  put('tollgate.prev_hash', r.prev_hash);
  put('user.id', r.identity.sub);
  put('mcp.method.name', r.mcp.method);
  put('gen_ai.tool.name', r.mcp.tool);
  put('jsonrpc.request.id', r.mcp.id === null ? null : String(r.mcp.id));
  put('mcp.session.id', r.mcp.session_id);
  put('http.response.status_code', r.result.http_status);
  put('error.type', r.result.code === null ? null : String(r.result.code));
  return out;
}

export function toOtlpLogRecord(r: ChainedDecisionRecord, observedNs: bigint): OtlpLogRecord {
  const ms = Date.parse(r.timestamp);
  const severity = r.result.allow ? INFO : r.result.code === -32006 ? ERROR : WARN;
  const rec: OtlpLogRecord = {
    timeUnixNano: (BigInt(Number.isFinite(ms) ? ms : 0) * 1_000_000n).toString(),
    observedTimeUnixNano: observedNs.toString(),
    severityNumber: severity,
    severityText: severity === INFO ? 'INFO' : severity === WARN ? 'WARN' : 'ERROR',
    eventName: 'tollgate.decision',
    body: anyValue(r),
    attributes: attributes(r),
  };
  // A W3C trace id links the record to the request's trace in the same backend.
  if (r.trace_id && /^[0-9a-f]{32}$/.test(r.trace_id)) rec.traceId = r.trace_id;
  return rec;
}

/** One export request: every record under one resource (service.name tollgate) and one scope. */
export function otlpLogsRequest(records: readonly ChainedDecisionRecord[], version: string, observedNs: bigint): OtlpLogsRequest {
  return {
    resourceLogs: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'tollgate' } }, { key: 'service.version', value: { stringValue: version } }] },
      scopeLogs: [{ scope: { name: 'tollgate.decisionlog', version }, logRecords: records.map((r) => toOtlpLogRecord(r, observedNs)) }],
    }],
  };
}
