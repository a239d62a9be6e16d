import { strict as assert } from 'node:assert';
import { parseBudgetConfig, type BudgetSpec } from '../../../src/budget/config.js';
import { applicableBudgets, evaluateBudgets, scopeMatches, tokensIn } from '../../../src/budget/ledger.js';
import type { ChargeSubject } from '../../../src/budget/types.js';
import { windowAt } from '../../../src/budget/window.js';

const specs: BudgetSpec[] = parseBudgetConfig(`
budgets:
  - { name: payments-daily, scope: { team: payments }, limit: 1000, window: day }
  - { name: payments-github, scope: { team: payments, server: github }, limit: 300, window: hour }
  - { name: bot, scope: { agent: ci-bot }, limit: 50, window: month, timezone: Europe/Berlin }
  - { name: all-warn, limit: 100, window: day, action: warn, tokenizer: cl100k_base }
`, 'b.yaml').budgets;

const alice: ChargeSubject = { team: 'payments', agent: null, sub: 'alice', server: 'github', tool: 'create_issue' };
const now = Date.parse('2025-06-10T12:00:00Z');

const standing = (spec: BudgetSpec, used: number, spendable = spec.limit - used, unavailable?: string) => ({
  spec, window: windowAt(spec.window, spec.timezone, now), usage: { limit: spec.limit, used, spendable, ...(unavailable ? { unavailable } : {}) },
});

describe('budget ledger', () => {
  it('applies every budget whose scope fields all match (AND), and budgets without scope to everyone', () => {
    assert.deepEqual(applicableBudgets(specs, alice).map((s) => s.name), ['payments-daily', 'payments-github', 'all-warn']);
    assert.deepEqual(applicableBudgets(specs, { ...alice, server: 'jira' }).map((s) => s.name), ['payments-daily', 'all-warn']);
    assert.ok(!scopeMatches(specs[2]!, alice));
    assert.ok(scopeMatches(specs[2]!, { ...alice, agent: 'ci-bot' }));
    assert.ok(!scopeMatches(specs[0]!, { ...alice, team: null }));
  });

  it('gives the policy limit, used, remaining, window and reset time of each budget', () => {
    const r = evaluateBudgets([standing(specs[0]!, 400), standing(specs[2]!, 10)], 5);
    assert.equal(r.exhausted, null);
    assert.deepEqual(r.entries[0], {
      name: 'payments-daily', scope: { team: 'payments' }, limit: 1000, used: 400, remaining: 600, window: 'day',
      resets_at: '2025-06-11T00:00:00.000Z', action: 'deny',
    });
    assert.equal(r.entries[1]!.resets_at, '2025-06-30T22:00:00.000Z'); // month in Berlin
  });

  it('refuses when a deny budget is used up, naming it, the limit and the reset', () => {
    const r = evaluateBudgets([standing(specs[0]!, 100), standing(specs[1]!, 300)], 0);
    assert.equal(r.exhausted?.name, 'payments-github');
    assert.match(r.reason!, /budget "payments-github" is exhausted: 300 of 300 tokens used this hour; it resets at 2025-06-10T13:00:00.000Z/);
  });

  it('refuses a call whose arguments alone exceed what is left', () => {
    const r = evaluateBudgets([standing(specs[0]!, 990)], 25);
    assert.equal(r.exhausted?.name, 'payments-daily');
    assert.match(r.reason!, /has 10 of 1000 tokens left this day, and this call's arguments alone count 25/);
    assert.equal(evaluateBudgets([standing(specs[0]!, 990)], 10).exhausted, null);
  });

  it('never refuses for warn budgets, but lists the used-up ones', () => {
    const r = evaluateBudgets([standing(specs[3]!, 150)], 1);
    assert.equal(r.exhausted, null);
    assert.deepEqual(r.warnings?.map((w) => w.name), ['all-warn']);
    assert.equal(r.entries[0]!.remaining, 0);
  });

  it('passes on why the store cannot vouch for a budget', () => {
    const r = evaluateBudgets([standing(specs[0]!, 0, 0, 'budget "payments-daily": shared budget state (NATS) is unreachable')], 1);
    assert.equal(r.exhausted?.name, 'payments-daily');
    assert.match(r.reason!, /unreachable/);
  });

  it('tells a replica whose lease is empty from an exhausted budget', () => {
    const r = evaluateBudgets([standing(specs[0]!, 200, 0)], 1);
    assert.match(r.reason!, /renewing its share of the budget \(800 of 1000 tokens left this day\); retry/);
  });

  it('charges each budget in its own tokenizer unit', () => {
    const t = { tokens: 10, byEncoding: { cl100k_base: 12 } };
    assert.equal(tokensIn(t, 'o200k_base'), 10);
    assert.equal(tokensIn(t, 'cl100k_base'), 12);
    assert.equal(tokensIn(7, 'cl100k_base'), 7);
  });
});
