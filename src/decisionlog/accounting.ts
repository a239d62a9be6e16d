import { ACCOUNTING_SCHEMA, type AccountingRecordDraft } from './types.js';

/** What the response side knows about an answered call when its result tokens are counted. */
export interface AccountingFacts {
  decisionId: string;
  now: Date;
  instance: string;
  version: string;
  identity: { sub: string | null; team: string | null; agent: string | null };
  server: string;
  namespace: string;
  method: string | null;
  tool: string | null;
  requestTokens: number;
  responseTokens: number;
}

/** The accounting record of a call (pure): linked to its decision by decision_id. */
export function accountingRecord(f: AccountingFacts): AccountingRecordDraft {
  const whole = (n: number): number => (Number.isFinite(n) && n > 0 ? Math.round(n) : 0);
  return {
    schema: ACCOUNTING_SCHEMA,
    type: 'response_tokens',
    decision_id: f.decisionId,
    timestamp: f.now.toISOString(),
    labels: { id: f.instance, app: 'tollgate', version: f.version, instance: f.instance },
    identity: { sub: f.identity.sub, team: f.identity.team, agent: f.identity.agent },
    mcp: { server: f.server, namespace: f.namespace, method: f.method, tool: f.tool },
    tokens: { request: whole(f.requestTokens), response: whole(f.responseTokens) },
  };
}
