import type { ChainedDecisionRecord } from '../decisionlog/types.js';
import { unfoldRecord } from '../decisionlog/fold.js';

/**
 * A decision record as an OCSF API Activity event (class_uid 6003, category 6 Application
 * Activity), so SIEMs that read OCSF (Splunk's OCSF add-on, Amazon Security Lake, Elastic,
 * Sentinel) take it without a custom parser. Pure. Field mapping: docs/siem.md.
 */

export const OCSF_VERSION = '1.3.0';
const CLASS_UID = 6003;
const CATEGORY_UID = 6;

/** MCP methods that only read: OCSF activity Read (2); every other method is Other (99), named. */
const READ_METHODS: ReadonlySet<string> = new Set([
  'tools/list', 'prompts/list', 'prompts/get', 'resources/list', 'resources/read', 'resources/templates/list', 'ping', 'completion/complete',
]);

export interface OcsfApiActivity {
  class_uid: 6003;
  class_name: 'API Activity';
  category_uid: 6;
  category_name: 'Application Activity';
  activity_id: 2 | 99;
  activity_name: string;
  type_uid: number;
  type_name: string;
  time: number;
  severity_id: 1 | 3 | 4;
  severity: 'Informational' | 'Medium' | 'High';
  status_id: 1 | 2;
  status: 'Success' | 'Failure';
  status_code?: string;
  status_detail?: string;
  message: string;
  actor: { user: { uid?: string; name?: string; groups?: Array<{ name: string }> }; app_name?: string; idp?: { name: string } };
  api: {
    operation: string;
    service: { name: string };
    request: { uid: string; data?: Record<string, unknown> };
    response: { code: number; error?: string; message?: string };
  };
  src_endpoint: { name: string };
  dst_endpoint: { svc_name: string; namespace?: string };
  resources?: Array<{ name: string; type: string; uid?: string }>;
  metadata: {
    version: string;
    product: { name: 'Tollgate'; vendor_name: 'Tollgate'; version: string };
    uid: string;
    log_name: 'tollgate.decision';
    original_time: string;
    sequence: number;
    correlation_uid?: string;
    labels: string[];
  };
  unmapped: Record<string, unknown>;
}

function resourceOf(r: ChainedDecisionRecord): OcsfApiActivity['resources'] {
  const m = r.mcp;
  if (m.tool) return [{ name: m.tool, type: 'MCP Tool', uid: `${m.namespace}/${m.server}/${m.tool}` }];
  const params = r.input?.mcp as { resource?: unknown; prompt?: unknown } | undefined;
  if (typeof params?.resource === 'string') return [{ name: params.resource, type: 'MCP Resource' }];
  if (typeof params?.prompt === 'string') return [{ name: params.prompt, type: 'MCP Prompt' }];
  return undefined;
}

/** Refusals for want of service (authz could not decide) rank above policy denials. */
function severityOf(r: ChainedDecisionRecord): Pick<OcsfApiActivity, 'severity_id' | 'severity'> {
  if (r.result.allow) return { severity_id: 1, severity: 'Informational' };
  if (r.result.code === -32006) return { severity_id: 4, severity: 'High' };
  return { severity_id: 3, severity: 'Medium' };
}

/** The masked input with its folded copies restored, so the export shows what authz evaluated. */
function inputOf(r: ChainedDecisionRecord): unknown {
  try {
    return unfoldRecord(r).input;
  } catch {
    // A record whose folds do not resolve is exported as written (logs verify reports tampering).
    return r.input;
  }
}

export function toOcsfApiActivity(r: ChainedDecisionRecord): OcsfApiActivity {
  const method = r.mcp.method ?? 'none';
  const read = READ_METHODS.has(method);
  const activityId = read ? 2 : 99;
  const activityName = read ? 'Read' : method;
  const reasons = r.result.reasons.join('; ');
  const revision = Object.values(r.bundles)[0]?.revision ?? null;
  const user: OcsfApiActivity['actor']['user'] = {};
  if (r.identity.sub) { user.uid = r.identity.sub; user.name = r.identity.sub; }
  if (r.identity.team) user.groups = [{ name: r.identity.team }];
  const event: OcsfApiActivity = {
    class_uid: CLASS_UID, class_name: 'API Activity', category_uid: CATEGORY_UID, category_name: 'Application Activity',
    activity_id: activityId, activity_name: activityName,
    type_uid: CLASS_UID * 100 + activityId, type_name: `API Activity: ${activityName}`,
    time: Date.parse(r.timestamp),
    ...severityOf(r),
    status_id: r.result.allow ? 1 : 2, status: r.result.allow ? 'Success' : 'Failure',
    message: `${r.result.allow ? 'allowed' : 'denied'} ${method}${r.mcp.tool ? ` ${r.mcp.tool}` : ''} on ${r.mcp.namespace}/${r.mcp.server} for ${r.identity.sub ?? 'an unauthenticated caller'}`,
    actor: {
      user,
      ...(r.identity.agent ? { app_name: r.identity.agent } : {}),
      ...(r.identity.iss ? { idp: { name: r.identity.iss } } : {}),
    },
    api: {
      operation: method,
      service: { name: r.mcp.server },
      request: { uid: r.decision_id, ...(r.mcp.id !== null ? { data: { jsonrpc_id: r.mcp.id } } : {}) },
      response: {
        code: r.result.http_status,
        ...(r.result.code !== null ? { error: String(r.result.code) } : {}),
        ...(reasons ? { message: reasons } : {}),
      },
    },
    src_endpoint: { name: r.identity.agent ?? r.identity.sub ?? 'unknown' },
    dst_endpoint: { svc_name: r.mcp.server, namespace: r.mcp.namespace },
    metadata: {
      version: OCSF_VERSION,
      product: { name: 'Tollgate', vendor_name: 'Tollgate', version: r.labels.version },
      uid: r.decision_id, log_name: 'tollgate.decision', original_time: r.timestamp, sequence: r.seq,
      ...(r.trace_id ? { correlation_uid: r.trace_id } : {}),
      labels: [`instance:${r.labels.instance}`, ...(revision ? [`policy_revision:${revision}`] : [])],
    },
    unmapped: {
      policy_revision: revision, reasons: r.result.reasons, outcome: r.result.outcome ?? null, policy_allow: r.result.policy_allow ?? null,
      mcp_session_id: r.mcp.session_id, batch_size: r.mcp.batch_size, delegation: r.identity.delegation,
      budget: r.budget, tokens: r.tokens, masked: r.masked, erased: r.erased, input: inputOf(r),
      chain: { seq: r.seq, prev_hash: r.prev_hash },
    },
  };
  if (r.result.code !== null) event.status_code = String(r.result.code);
  if (r.result.error ?? reasons) event.status_detail = r.result.error ?? reasons;
  const resources = resourceOf(r);
  if (resources) event.resources = resources;
  return event;
}
