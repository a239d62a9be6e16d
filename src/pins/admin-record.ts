import { randomUUID } from 'node:crypto';
import { DECISION_RECORD_SCHEMA, type DecisionRecordDraft } from '../decisionlog/types.js';
import type { PinEvent } from './nats-source.js';

/** The decision-log path of administrative records about tool pins. */
export const PIN_RECORD_PATH = 'tollgate/admin/tool-pin';

function sentence(e: PinEvent): string {
  const what = `tool ${e.tool} of server ${e.server}`;
  switch (e.action) {
    case 'approve': return `pin of ${what} in force: definition ${e.sha256} approved by ${e.approver} (signature verified with approver key ${e.kid})`;
    case 'revoke': return `pin of ${what} revoked by ${e.approver} (signature verified with approver key ${e.kid}); the tool is now new`;
    case 'removed': return `pin of ${what} removed: ${e.note}; the tool is now new`;
    case 'rejected': return `pin entry for ${what} refused, not applied: ${e.note}`;
  }
}

/**
 * An administrative record: what this authz instance put in force (or refused) about a tool pin,
 * written through the same sink and hash chain as call decisions, so `logs verify` covers it.
 * method is `tollgate/pin.<action>`; identity.sub is the approver who signed it.
 */
export function pinRecord(e: PinEvent, labels: { instance: string; version: string }, now = new Date()): DecisionRecordDraft {
  const id = randomUUID();
  return {
    schema: DECISION_RECORD_SCHEMA,
    decision_id: id,
    timestamp: now.toISOString(),
    trace_id: null,
    labels: { id, app: 'tollgate', version: labels.version, instance: labels.instance },
    path: PIN_RECORD_PATH,
    bundles: {},
    identity: { sub: e.approver, iss: e.kid ? `approver-key:${e.kid}` : null, team: null, agent: null, delegation: [] },
    mcp: { server: e.server, namespace: '', method: `tollgate/pin.${e.action}`, tool: e.tool, id: null, session_id: null, batch_size: null },
    input: null,
    result: { allow: e.action === 'approve', reasons: [sentence(e)], http_status: 0, code: null, error: e.action === 'rejected' ? e.note : null },
    budget: null,
    tokens: null,
    metrics: { timer_eval_ns: 0, timer_total_ns: 0 },
    erased: [],
    masked: [],
  };
}
