import { strict as assert } from 'node:assert';
import { parseBudgetConfig, type BudgetSpec } from '../../../src/budget/config.js';
import { createBudgetGate } from '../../../src/budget/gate.js';
import type { BudgetStore, BudgetUsage } from '../../../src/budget/store.js';
import type { ChargeSubject } from '../../../src/budget/types.js';
import type { BudgetWindow } from '../../../src/budget/window.js';

/**
 * The gate on its own (src/budget/gate.ts), over a store that only remembers: which budgets it was
 * asked about, with what need, and what was spent. The store's own accounting is tested with it
 * (local-store.test.ts); here, what the gate adds: which budgets apply, batch claims, each budget's
 * encoding, metrics, swapping budgets.
 */
class MemoryStore implements BudgetStore {
  used = new Map<string, number>();
  asked: Array<{ budget: string; window: string; need: number | undefined }> = [];
  spent: Array<{ budget: string; tokens: number; now: number }> = [];
  constructor(private readonly limitOf: (s: BudgetSpec) => number = (s) => s.limit) {}
  usage(spec: BudgetSpec, window: BudgetWindow, _now: number, need?: number): BudgetUsage {
    this.asked.push({ budget: spec.name, window: window.key, need });
    const used = this.used.get(spec.name) ?? 0;
    const limit = this.limitOf(spec);
    return { limit, used, spendable: Math.max(0, limit - used) };
  }
  spend(spec: BudgetSpec, _window: BudgetWindow, tokens: number, now: number): void {
    this.spent.push({ budget: spec.name, tokens, now });
    this.used.set(spec.name, (this.used.get(spec.name) ?? 0) + tokens);
  }
  async close(): Promise<void> {}
}

const config = parseBudgetConfig(`
budgets:
  - { name: payments-daily, scope: { team: payments }, limit: 100, window: day }
  - { name: payments-cl100k, scope: { team: payments }, limit: 1000, window: month, tokenizer: cl100k_base }
  - { name: search-warn, scope: { tool: search }, limit: 10, window: hour, action: warn }
`, 'budgets.yaml');
const NOW = Date.parse('2026-06-10T10:00:00Z');
const alice: ChargeSubject = { team: 'payments', agent: null, sub: 'alice', server: 'docs', tool: 'search' };
const bob: ChargeSubject = { team: 'ops', agent: null, sub: 'bob', server: 'docs', tool: 'deploy' };

describe('budget gate (budget/gate.ts)', () => {
  it('asks nothing of the store and measures nothing for a caller no budget applies to', () => {
    const store = new MemoryStore();
    const gate = createBudgetGate(config, store, { clock: () => NOW });
    assert.deepEqual(gate.check(bob, 50), { entries: [], exhausted: null });
    assert.deepEqual(gate.measure(bob, { query: 'a long argument string' }), { tokens: 0 });
    gate.charge(bob, 50);
    assert.deepEqual([store.asked, store.spent], [[], []]);
    assert.deepEqual(gate.encodingsFor(bob), ['o200k_base'], 'the default encoding only');
  });

  it('lists every applicable budget, in the current window, and passes the store each budget\'s need in its own encoding', () => {
    const store = new MemoryStore();
    const gate = createBudgetGate(config, store, { clock: () => NOW });
    const r = gate.check(alice, { tokens: 7, byEncoding: { o200k_base: 7, cl100k_base: 9 } });
    assert.deepEqual(r.entries.map((e) => e.name), ['payments-daily', 'payments-cl100k', 'search-warn']);
    assert.equal(r.exhausted, null);
    assert.deepEqual(store.asked, [
      { budget: 'payments-daily', window: '2026-06-10', need: 7 },
      { budget: 'payments-cl100k', window: '2026-06', need: 9 },
      { budget: 'search-warn', window: '2026-06-10T10Z', need: 7 },
    ]);
    assert.deepEqual([...gate.encodingsFor(alice)].sort(), ['cl100k_base', 'o200k_base']);
  });

  it('counts earlier batch elements of the same scope as spent, and refuses the one that would overshoot', () => {
    const store = new MemoryStore();
    const gate = createBudgetGate(config, store, { clock: () => NOW });
    // Two earlier elements: one of alice's (claims 60 against her team's budgets), one of bob's (none).
    const prior = [{ subject: alice, tokens: 60 }, { subject: bob, tokens: 500 }];
    const r = gate.check(alice, 50, prior);
    const daily = r.entries.find((e) => e.name === 'payments-daily')!;
    assert.equal(daily.used, 60, 'the earlier element of the same team counts; bob\'s does not');
    assert.equal(r.exhausted?.name, 'payments-daily');
    assert.match(r.reason!, /payments-daily" has 40 of 100 tokens left this day, and this call's arguments alone count 50/);
    assert.equal(store.asked[0]!.need, 50 + 60, 'the store is asked for the call and what the batch claimed');
    assert.equal(gate.metrics.denials.get('payments-daily'), 1);
    assert.equal(gate.check(alice, 40, prior).exhausted, null, 'exactly what is left passes');
    assert.equal(gate.metrics.denials.get('payments-daily'), 1, 'only refusals are counted');
  });

  it('never refuses for a used-up warn budget, and names it among the warnings', () => {
    const store = new MemoryStore();
    store.used.set('search-warn', 10);
    const gate = createBudgetGate(config, store, { clock: () => NOW });
    const r = gate.check(alice, 1);
    assert.equal(r.exhausted, null);
    assert.deepEqual(r.warnings?.map((w) => w.name), ['search-warn']);
    assert.equal(gate.metrics.denials.size, 0);
  });

  it('charges each budget in its own encoding, skips nothing-to-charge, and counts what it charged', () => {
    const store = new MemoryStore();
    const gate = createBudgetGate(config, store, { clock: () => NOW });
    gate.charge(alice, { tokens: 5, byEncoding: { o200k_base: 5, cl100k_base: 0 } });
    assert.deepEqual(store.spent, [{ budget: 'payments-daily', tokens: 5, now: NOW }, { budget: 'search-warn', tokens: 5, now: NOW }]);
    gate.charge(alice, 3);
    assert.deepEqual(Object.fromEntries(gate.metrics.chargedTokens), { 'payments-daily': 8, 'search-warn': 8, 'payments-cl100k': 3 });
    gate.charge(alice, 0);
    assert.equal(store.spent.length, 5, 'a zero charge spends nothing');
  });

  it('measures in every encoding the subject\'s budgets use', () => {
    const gate = createBudgetGate(config, new MemoryStore(), { clock: () => NOW });
    const m = gate.measure(alice, { query: 'refunds over 100 euros in March' });
    assert.ok(m.tokens > 0);
    assert.deepEqual(Object.keys(m.byEncoding ?? {}), ['cl100k_base'], 'the default encoding is `tokens` itself');
  });

  it('swaps the budgets in place: the next check uses the new ones, the array others hold is the same', () => {
    const store = new MemoryStore();
    const gate = createBudgetGate(config, store, { clock: () => NOW });
    const held = gate.budgets;
    assert.equal(gate.check(bob, 1).entries.length, 0);
    const ops = parseBudgetConfig('budgets:\n  - { name: ops-daily, scope: { team: ops }, limit: 5, window: day }\n', 'b.yaml').budgets;
    gate.setBudgets(ops);
    assert.equal(held, gate.budgets);
    assert.deepEqual(held.map((b) => b.name), ['ops-daily']);
    assert.equal(gate.check(bob, 6).exhausted?.name, 'ops-daily', 'the cached "no budget for bob" was dropped');
    assert.equal(gate.check(alice, 1).entries.length, 0);
  });
});
