import { strict as assert } from 'node:assert';
import { formatRanges, isRegoTestFile, mergeCoverageReports, summariseCoverage, toRanges } from '../../../src/toolkit/coverage.js';
import { parseTestResults, summariseTests } from '../../../src/toolkit/opa-results.js';

const range = (a: number, b = a) => ({ start: { row: a, col: 1 }, end: { row: b, col: 9 } });

describe('coverage math and opa test reports', () => {
  it('counts lines per file: covered if anything on the line ran', () => {
    const s = summariseCoverage({
      files: {
        'p/authz.rego': { covered: [range(1, 3), range(5)], not_covered: [range(5), range(7, 8), range(12)] },
        'p/authz_test.rego': { covered: [range(1, 40)] },
        'p/lib/x.rego': { not_covered: [range(2)] },
      },
    }, { exclude: isRegoTestFile, display: (f) => f.replace(/^p\//, 'policies/') })!;
    assert.deepEqual(s.files.map((f) => [f.file, f.covered, f.notCovered, Math.round(f.percent)]), [['policies/authz.rego', 4, 3, 57], ['policies/lib/x.rego', 0, 1, 0]]);
    assert.deepEqual(s.files[0]!.uncovered, [[7, 8], [12, 12]]);
    assert.equal(s.covered, 4);
    assert.equal(s.notCovered, 4);
    assert.equal(s.percent, 50);
    assert.equal(summariseCoverage('not a report'), null);
    assert.equal(summariseCoverage({ files: {} })!.percent, 100);
  });

  it('merges reports: a line covered by any run is covered', () => {
    const merged = mergeCoverageReports([
      { files: { 'a.rego': { covered: [range(1)], not_covered: [range(2)] } } },
      { files: { 'a.rego': { covered: [range(2)], not_covered: [range(3)] }, 'b.rego': { covered: [range(1)] } } },
    ]);
    const s = summariseCoverage(merged)!;
    assert.deepEqual(s.files.map((f) => [f.file, f.covered, f.notCovered]), [['a.rego', 2, 1], ['b.rego', 1, 0]]);
  });

  it('formats line ranges', () => {
    assert.deepEqual(toRanges([9, 1, 2, 3, 7, 2]), [[1, 3], [7, 7], [9, 9]]);
    assert.equal(formatRanges([[1, 3], [7, 7]]), '1-3, 7');
    assert.equal(formatRanges([[1, 1], [3, 3], [5, 5]], 2), '1, 3, … (1 more)');
  });

  it('reads opa test --format json: pass, fail, error, skip and printed output', () => {
    const results = parseTestResults(JSON.stringify([
      { location: { file: 'p/a_test.rego', row: 9 }, package: 'data.q', name: 'test_b', fail: true, output: Buffer.from('hello\n').toString('base64') },
      { location: { file: 'p/a_test.rego', row: 3 }, package: 'data.q', name: 'test_a' },
      { location: { file: 'p/a_test.rego', row: 12 }, package: 'data.q', name: 'test_c', error: { code: 'eval_conflict_error', message: 'conflict', location: { file: 'p/a.rego', row: 5 } } },
      { location: { file: 'p/a_test.rego', row: 15 }, package: 'data.q', name: 'todo_test_d', skip: true },
    ]))!;
    assert.deepEqual(results.map((r) => [r.id, r.line, r.outcome]), [['data.q.test_a', 3, 'pass'], ['data.q.test_b', 9, 'fail'], ['data.q.test_c', 12, 'error'], ['data.q.todo_test_d', 15, 'skip']]);
    assert.equal(results[1]!.output, 'hello\n');
    assert.equal(results[2]!.error, 'p/a.rego:5: eval_conflict_error: conflict');
    assert.deepEqual(summariseTests(results), { total: 4, passed: 1, failed: 1, errors: 1, skipped: 1 });
    assert.equal(parseTestResults('1 error occurred: x.rego:1: rego_parse_error'), null);
  });
});
