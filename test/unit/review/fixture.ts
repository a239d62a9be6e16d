import { accountingRecord } from '../../../src/decisionlog/accounting.js';
import type { AccountingRecordDraft, DecisionRecordDraft } from '../../../src/decisionlog/types.js';
import { sampleDraft, type SampleOptions } from '../decisionlog/fixtures.js';

/** A caller-chosen tool name that would run script if any view put it into markup. */
export const HOSTILE_TOOL = '<img src=x onerror="document.title=\'pwned\'">';

export const accountFor = (d: DecisionRecordDraft, response: number) => accountingRecord({
  decisionId: d.decision_id, now: new Date(Date.parse(d.timestamp) + 5), instance: 'authz-1', version: '0.1.0',
  identity: { sub: d.identity.sub, team: d.identity.team, agent: d.identity.agent },
  server: d.mcp.server, namespace: d.mcp.namespace, method: d.mcp.method, tool: d.mcp.tool, requestTokens: d.tokens?.request ?? 0, responseTokens: response,
});

/**
 * A small day of traffic for the review view: three teams, allowed and denied calls, budgets
 * that burn down, an accounting record after each allowed call, a delegated call, and a hostile
 * tool name. Returns the drafts in log order.
 */
export function writeReviewLog(sink: { append(d: DecisionRecordDraft): void; account(a: AccountingRecordDraft): void }, n = 60): DecisionRecordDraft[] {
  const teams = ['payments', 'growth', 'billing-ops'];
  const out: DecisionRecordDraft[] = [];
  const used: Record<string, number> = {};
  for (let i = 1; i <= n; i++) {
    const team = teams[i % 3]!;
    const deny = team === 'growth' && i % 2 === 0;
    const tool = i === 7 ? HOSTILE_TOOL : deny ? 'delete_records' : i % 5 === 0 ? 'get_invoice' : 'search';
    const o: SampleOptions = {
      i, team, sub: `${team}-user-${i % 4}`, agent: `agent-${i % 2}`, server: i % 4 === 0 ? 'search' : 'billing', tool,
      allow: !deny, reasons: deny ? ['delete_records requires team billing-ops'] : [], revision: i <= n / 2 ? 'rev-1' : 'rev-2',
      timestamp: new Date(Date.UTC(2025, 2, 9, 0, i)).toISOString(), args: { query: `q${i}`, password: '[masked]' },
    };
    const d = sampleDraft(o);
    // A denied call is not charged: its budget standing stays where it was.
    used[team] = (used[team] ?? 0) + (deny ? 0 : 100);
    d.budget = [{ name: `team-${team}-daily`, limit: 5000, used: used[team]!, remaining: 5000 - used[team]! }];
    d.tokens = { request: 12 + i, response: null };
    d.masked = ['input.mcp.arguments.password'];
    if (i === 11) d.identity.delegation = [{ sub: 'gateway', act: 'call_tool' }];
    sink.append(d);
    if (d.result.allow) sink.account(accountFor(d, 200 + i));
    out.push(d);
  }
  return out;
}
