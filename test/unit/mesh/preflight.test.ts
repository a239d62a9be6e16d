import { strict as assert } from 'node:assert';
import { BudgetConfigError, parseBudgetConfig } from '../../../src/budget/config.js';
import { budgetProblem, fieldPath, requiredTools, yamlLineOf } from '../../../src/mesh/preflight.js';

describe('up preflight helpers (issue 18)', () => {
  it('reads the field paths budget errors name', () => {
    assert.deepEqual(fieldPath('budgets[2].scope.team'), ['budgets', 2, 'scope', 'team']);
    assert.deepEqual(fieldPath('nats.lease.min'), ['nats', 'lease', 'min']);
    assert.deepEqual(fieldPath(''), []);
  });

  it('finds the line of a field, of its nearest parent when it is missing, and of a YAML syntax error', () => {
    const text = 'budgets:\n  - name: a\n    limit: 5\n  - name: b\n    scope:\n      team: x\n';
    assert.equal(yamlLineOf(text, 'budgets[0].limit'), 3);
    assert.equal(yamlLineOf(text, 'budgets[1].scope.team'), 6);
    assert.equal(yamlLineOf(text, 'budgets[1].limit'), 4);
    assert.equal(yamlLineOf('budgets:\n  - name: a\n    limit: [1,\n', 'budgets'), 4);
  });

  it('turns a budgets schema error into --budgets FILE:LINE: field: problem', () => {
    const text = 'budgets:\n  - name: a\n    scope: {team: t}\n    window: day\n    limit: -1\n';
    let err: unknown;
    try { parseBudgetConfig(text, '/x/b.yaml'); } catch (e) { err = e; }
    assert.ok(err instanceof BudgetConfigError);
    const p = budgetProblem('/x/b.yaml', text, err);
    assert.match(p.cause, /^--budgets \/x\/b\.yaml:5: budgets\[0\]\.limit: /);
  });

  it('needs nats-server only with the control plane', () => {
    assert.deepEqual(requiredTools(false), ['opa', 'envoy']);
    assert.deepEqual(requiredTools(true), ['opa', 'envoy', 'nats-server']);
  });
});
