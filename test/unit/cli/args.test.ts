import { strict as assert } from 'node:assert';
import { timeFlag } from '../../../src/cli/args.js';
import { UsageError } from '../../../src/cli/types.js';

/** The time flags of `tollgate logs` and `tollgate policy replay|explain` (--since, --until, --time). */
describe('timeFlag', () => {
  const now = new Date('2026-12-06T12:00:00Z');

  it('reads relative and absolute times, and null when the flag is not given', () => {
    assert.equal(timeFlag(undefined, 'since', now), null);
    assert.equal(timeFlag('2h', 'since', now)?.toISOString(), '2026-12-06T10:00:00.000Z');
    assert.equal(timeFlag('2026-12-01T00:00:00Z', 'until', now)?.toISOString(), '2026-12-01T00:00:00.000Z');
  });

  it('turns a bad time into a usage error naming the flag', () => {
    assert.throws(() => timeFlag('yesterday-ish', 'until', now), (e: unknown) => e instanceof UsageError && /^--until: /.test(e.message));
  });
});
