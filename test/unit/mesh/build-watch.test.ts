import { strict as assert } from 'node:assert';
import type { PolicyBuildStatus } from '../../../src/controlplane/build-status.js';
import { describeBuildChange } from '../../../src/mesh/build-watch.js';

const base: PolicyBuildStatus = { revision: 2, publishedAt: '2026-01-01T00:00:00Z', contentSha256: 'abcdef0123456789', buildFailures: 0, lastFailure: null, failing: false };

describe('up: what it says about policy builds (issue 18)', () => {
  it('says nothing on the first read or when nothing changed', () => {
    assert.equal(describeBuildChange(null, base), null);
    assert.equal(describeBuildChange(base, { ...base }), null);
  });

  it('says a refused edit with its message and the revision that still serves', () => {
    const failed = { ...base, buildFailures: 1, failing: true, lastFailure: { at: 'x', message: 'policy check failed:\n  a.rego:3:1: rego_parse_error' } };
    assert.equal(describeBuildChange(base, failed), 'policy edit REFUSED, not published (revision 2 still serves):\n  policy check failed:\n    a.rego:3:1: rego_parse_error\n');
    assert.match(describeBuildChange({ ...base, revision: null }, { ...failed, revision: null }) ?? '', /nothing is published yet, every call is refused/);
  });

  it('says a new revision, and that a refused edit is fixed', () => {
    const failed = { ...base, buildFailures: 1, failing: true, lastFailure: { at: 'x', message: 'm' } };
    assert.equal(describeBuildChange(failed, { ...failed, failing: false, revision: 3 }), 'policy revision 3 published (content abcdef012345): the refused edit is fixed\n');
    assert.equal(describeBuildChange(failed, { ...failed, failing: false }), 'policy sources build again (same content as revision 2, which serves)\n');
  });
});
