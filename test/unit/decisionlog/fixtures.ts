import type { PolicyInput } from '../../../src/contract/policy.js';
import { DECISION_RECORD_SCHEMA, type DecisionRecordDraft } from '../../../src/decisionlog/types.js';

export interface SampleOptions {
  i?: number;
  allow?: boolean;
  sub?: string;
  team?: string | null;
  agent?: string | null;
  server?: string;
  namespace?: string;
  tool?: string | null;
  method?: string;
  reasons?: string[];
  revision?: string;
  timestamp?: string;
  args?: Record<string, unknown>;
  withInput?: boolean;
}

/** A policy input shaped as authz builds it (arguments present in all three places). */
export function sampleInput(args: Record<string, unknown>, o: { tool?: string; server?: string; namespace?: string; batch?: { index: number; size: number } | null; body?: unknown } = {}): PolicyInput {
  const params = { name: o.tool ?? 'search', arguments: args };
  const message = { jsonrpc: '2.0', id: 7, method: 'tools/call', params };
  const headers: Record<string, string> = {
    authorization: 'Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlc2lnbmF0dXJl',
    'content-type': 'application/json', 'mcp-session-id': 'sess-1', cookie: 'sid=abc',
  };
  return {
    version: 1,
    mcp: {
      method: 'tools/call', kind: 'request', tool: o.tool ?? 'search', arguments: args, resource: null, prompt: null, params,
      id: 7, session_id: 'sess-1', protocol_version: '2025-06-18', server: o.server ?? 'billing', namespace: o.namespace ?? 'default',
      annotations: null, batch: o.batch ?? null,
    },
    identity: { authenticated: true, sub: 'alice', iss: 'http://127.0.0.1:5556', team: 'payments', groups: ['dev'], roles: [], tenant: null, agent: 'agent-1', scopes: ['mcp'], delegation: [], claims: { sub: 'alice' } },
    budget: { budgets: [], estimated_tokens: 12 },
    request: { id: 'req-1', method: 'POST', path: '/mcp', host: '127.0.0.1:10000', scheme: 'http', headers, time_ns: 1 },
    attributes: { request: { http: { method: 'POST', path: '/mcp', headers, body: JSON.stringify(o.body ?? message) } } },
    parsed_body: o.body ?? message,
    parsed_path: ['mcp'],
    parsed_query: {},
    truncated_body: false,
  };
}

export function sampleDraft(o: SampleOptions = {}): DecisionRecordDraft {
  const i = o.i ?? 0;
  const allow = o.allow ?? true;
  const tool = o.tool === undefined ? 'search' : o.tool;
  return {
    schema: DECISION_RECORD_SCHEMA,
    decision_id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    timestamp: o.timestamp ?? new Date(Date.UTC(2025, 0, 1, 0, 0, i % 60)).toISOString(),
    trace_id: null,
    labels: { id: 'authz-1', app: 'tollgate', version: '0.1.0', instance: 'authz-1' },
    path: 'tollgate/authz/decision',
    bundles: { tollgate: { revision: o.revision ?? 'rev-1' } },
    identity: { sub: o.sub ?? 'alice', iss: 'http://127.0.0.1:5556', team: o.team === undefined ? 'payments' : o.team, agent: o.agent === undefined ? 'agent-1' : o.agent, delegation: [] },
    mcp: { server: o.server ?? 'billing', namespace: o.namespace ?? 'default', method: o.method ?? 'tools/call', tool, id: i, session_id: 'sess-1', batch_size: null },
    input: o.withInput === false ? null : sampleInput(o.args ?? { query: `q${i}` }, { tool: tool ?? undefined, server: o.server, namespace: o.namespace }),
    result: { allow, reasons: o.reasons ?? (allow ? [] : ['tool is not allowed for this team']), http_status: 200, code: allow ? null : -32001, error: null },
    budget: null,
    tokens: { request: 12, response: null },
    metrics: { timer_eval_ns: 1200, timer_total_ns: 5400 },
    erased: [],
    masked: [],
  };
}
