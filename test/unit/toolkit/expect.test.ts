import { strict as assert } from 'node:assert';
import { compareDecision } from '../../../src/toolkit/expect.js';
import { decisionDifferences } from '../../../src/toolkit/decision-diff.js';
import type { Decision } from '../../../src/contract/policy.js';

const denied: Decision = {
  allow: false, reasons: ['Team support may not use tool run_sql.', 'Argument query is required.'], headers: { 'x-why': 'policy' },
  httpStatus: 403, mask: ['/input/mcp/arguments/password'], cost: null,
};

describe('scenario expectations', () => {
  it('passes when every stated field matches, ignoring order and unstated fields', () => {
    assert.deepEqual(compareDecision({ allow: false }, denied), []);
    assert.deepEqual(compareDecision({
      allow: false, reasons: ['Argument query is required.', 'Team support may not use tool run_sql.'], reasonsContain: ['may not use', 'required'],
      status: 403, headers: { 'X-Why': 'policy', 'x-absent': null }, mask: ['/input/mcp/arguments/password'], cost: null,
    }, denied), []);
  });

  it('reports each mismatch with what was expected and what the policy decided', () => {
    const m = compareDecision({ allow: true, reasonsContain: ['budget'], status: null, headers: { 'x-why': 'other', 'x-new': 'v' }, mask: [], cost: 5 }, denied);
    assert.deepEqual(m, [
      { field: 'allow', expected: 'true', actual: 'false' },
      { field: 'reasons_contain', expected: 'a reason containing "budget"', actual: '"Team support may not use tool run_sql.", "Argument query is required."' },
      { field: 'status', expected: 'no http_status', actual: '403' },
      { field: 'headers', expected: 'x-why: "other"', actual: 'x-why: "policy"' },
      { field: 'headers', expected: 'x-new: "v"', actual: 'no header x-new' },
      { field: 'mask', expected: '(none)', actual: '"/input/mcp/arguments/password"' },
      { field: 'cost', expected: '5', actual: 'no cost' },
    ]);
    assert.deepEqual(compareDecision({ reasons: ['x'] }, { ...denied, reasons: [] }), [{ field: 'reasons', expected: '"x"', actual: '(none)' }]);
    assert.deepEqual(compareDecision({ headers: { 'x-why': null } }, denied), [{ field: 'headers', expected: 'no header x-why', actual: 'x-why: "policy"' }]);
  });

  it('names the fields on which two decisions differ', () => {
    assert.deepEqual(decisionDifferences(denied, { ...denied, reasons: [...denied.reasons].reverse() }), []);
    assert.deepEqual(decisionDifferences(denied, { ...denied, allow: true, headers: {}, cost: 1 }), ['allow', 'headers', 'cost']);
  });
});
