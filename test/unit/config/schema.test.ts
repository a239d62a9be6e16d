import { strict as assert } from 'node:assert';
import { z } from 'zod';
import { describeValue, fieldPath, firstProblem, strictMapping } from '../../../src/config/schema.js';
import { parseBudgetConfig } from '../../../src/budget/config.js';
import { resolveDecisionLogConfig } from '../../../src/decisionlog/config.js';
import { parseUsersFile } from '../../../src/identity/hydra/local-idp.js';

/** The helpers every config schema shares: one wording for unknown keys and wrong types. */
describe('config schema helpers', () => {
  const schema = strictMapping({
    name: z.string(),
    items: z.array(strictMapping({ size: z.number() }, 'must be a mapping with size')).optional(),
  }, 'must be a mapping with name');
  const problem = (v: unknown, at?: PropertyKey[]): [string, string] => {
    const r = schema.safeParse(v);
    assert.ok(!r.success, 'accepted');
    return firstProblem(r.error, at);
  };

  it('names an unknown key by its own path and lists the known ones', () => {
    assert.deepEqual(problem({ name: 'a', nmae: 'b' }), ['nmae', 'unknown field (known: name, items)']);
    assert.deepEqual(problem({ name: 'a', items: [{ size: 1 }, { size: 2, sise: 3 }] }), ['items[1].sise', 'unknown field (known: size)']);
  });

  it('says what a non-mapping should have been and what was given, under the caller\'s prefix', () => {
    assert.deepEqual(problem([1]), ['', 'must be a mapping with name, got a list']);
    assert.deepEqual(problem({ name: 'a', items: ['x'] }, ['spec']), ['spec.items[0]', 'must be a mapping with size, got "x"']);
  });

  it('describes values as a reader would write them', () => {
    assert.deepEqual([undefined, null, 'x', 3, [], {}, true].map(describeValue), ['nothing', 'null', '"x"', '3', 'a list', 'a mapping', 'true']);
    assert.equal(fieldPath([]), '');
    assert.equal(fieldPath(['budgets', 0, 'scope', 'team']), 'budgets[0].scope.team');
  });

  it('every config reports an unknown key in the same words', () => {
    assert.throws(() => parseBudgetConfig('budgets: []\nnats: { bukcet: b }', 'b.yaml'), /^BudgetConfigError: b\.yaml: nats\.bukcet: unknown field \(known: url, bucket, /);
    assert.throws(() => resolveDecisionLogConfig({ nats: { url: 'nats://x', stream: 'S', spool: '/s' } as never }), /^DecisionLogConfigError: decision log config: nats\.spool: unknown field \(known: url, stream, subjectPrefix, /);
    assert.throws(() => resolveDecisionLogConfig({ checkpointEvry: 5 } as never), /decision log config: checkpointEvry: unknown field \(known: dir, maxFileBytes, /);
    assert.throws(() => parseUsersFile('users:\n  - username: a\n    password: abcdefgh\n    team: x\n', 'users.yaml'), /^Error: users\.yaml: users\[0\]\.team: unknown field \(known: username, password, claims\)$/);
  });
});
