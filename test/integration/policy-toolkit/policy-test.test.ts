import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { cleanup, copyOfPolicies, policy, REPO_POLICIES, scratch, write } from './support.js';

const FAILING = `defaults:
  identity: {sub: bob, team: support}
cases:
  - name: support may search
    request: {tool: search_docs, arguments: {query: refunds}}
    expect: {allow: true}
  - name: support may run sql (wrong on purpose)
    request: {tool: run_sql, arguments: {query: SELECT 1}}
    expect:
      allow: true
  - name: the reason mentions approval (wrong on purpose)
    request: {tool: run_sql, arguments: {query: SELECT 1}}
    expect:
      allow: false
      reasons_contain: [needs approval]
`;

describe('tollgate policy test', function () {
  this.timeout(120_000);
  after(cleanup);

  it('passes on the example policies and their scenario file, with coverage and the interpreter cross-check', async () => {
    const r = await policy(['test', REPO_POLICIES, '--coverage']);
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /opa test .*policies: \d+ passed, 0 failed/);
    const m = /scenarios (\d+)\/(\d+) passed/.exec(r.out);
    assert.ok(m && m[1] === m[2] && Number(m[1]) >= 20, r.out);
    assert.match(r.out, /^PASS: /m);
    assert.match(r.out, /WASM vs interpreter: all \d+ evaluated cases agree/);
    // Per-file coverage, by the Rego tests and by the scenarios.
    assert.match(r.out, /policies\/authz\.rego\s+\d+\.\d%\s+\d+\.\d%/);
    assert.match(r.out, /policies\/lib\/tools\.rego\s+\d+\.\d%\s+\d+\.\d%/);
    assert.match(r.out, /^\s+total\s+\d+\.\d%\s+\d+\.\d%/m);
    assert.doesNotMatch(r.out, /_test\.rego\s+\d/);
  });

  it('names each failing case with expected vs actual, and exits 1', async () => {
    const dir = copyOfPolicies();
    const file = join(dir, 'scenarios', 'support.yaml');
    write(dir, { 'scenarios/support.yaml': FAILING });
    const r = await policy(['test', dir]);
    assert.equal(r.code, 1);
    assert.ok(r.out.includes(`  FAIL  ${file}:7  support may run sql (wrong on purpose)`), r.out);
    assert.match(r.out, /allow:\s+expected true\n\s+actual\s+false/);
    assert.ok(r.out.includes('- Team support may not use tool run_sql (a query tool).'), r.out);
    assert.ok(r.out.includes(`  FAIL  ${file}:11  the reason mentions approval (wrong on purpose)`), r.out);
    assert.match(r.out, /reasons_contain:\s+expected a reason containing "needs approval"\n\s+actual\s+"Team support may not use tool run_sql/);
    assert.ok(!r.out.includes('support may search\n'), 'passing cases are not listed without -v');
    assert.match(r.out, /1 passed, 2 failed/);
    assert.match(r.out, /^FAIL: .*scenarios 1\/3 passed/m);

    const v = await policy(['test', dir, '-v', '--run', 'search']);
    assert.equal(v.code, 0, v.out);
    assert.ok(v.out.includes(`  ok    ${file}:4  support may search`), v.out);
    assert.match(v.out, /1 passed, 0 failed/);
  });

  it('reports malformed scenario files by file, line, case and field', async () => {
    const dir = copyOfPolicies();
    write(dir, {
      'scenarios/bad.yaml': 'cases:\n  - name: ok\n    request: {tool: search_docs, arguments: {query: x}}\n    expect: {allow: true}\n  - name: typo\n    request: {tool: search_docs}\n    expect: {allow: maybe}\n',
      'scenarios/good.yaml': 'defaults: {identity: {sub: a, team: payments}}\ncases:\n  - name: fine\n    request: {tool: search_docs, arguments: {query: x}}\n    expect: {allow: true}\n',
    });
    const r = await policy(['test', dir]);
    assert.equal(r.code, 1);
    assert.ok(r.out.includes(`${join(dir, 'scenarios', 'bad.yaml')}:7: case 2, expect.allow: must be true or false, not string "maybe"`), r.out);
    assert.match(r.out, /invalid scenario files \(their cases did not run\)/);
    assert.match(r.out, /1 passed, 0 failed/);
    assert.match(r.out, /^FAIL: .*1 problem in scenario files/m);

    const none = await policy(['test', dir, '--scenarios', join(dir, 'nothing', '*.yaml')]);
    assert.equal(none.code, 1);
    assert.match(none.out, /no scenario files match this pattern/);
  });

  it('gives the whole report as JSON', async () => {
    const dir = copyOfPolicies();
    write(dir, { 'scenarios/support.yaml': FAILING });
    const r = await policy(['test', dir, '--json']);
    assert.equal(r.code, 1);
    const doc = JSON.parse(r.out) as { ok: boolean; summary: { cases: number; failed: number }; results: Array<{ name: string; status: string; mismatches: Array<{ field: string }> }>; rego: { summary: { failed: number } } };
    assert.equal(doc.ok, false);
    assert.deepEqual([doc.summary.cases, doc.summary.failed, doc.rego.summary.failed], [3, 2, 0]);
    assert.deepEqual(doc.results.map((x) => [x.status, x.mismatches.map((m) => m.field)]), [['pass', []], ['fail', ['allow']], ['fail', ['reasons_contain']]]);
  });

  it('reports failing Rego tests and a policy that does not build, at file:line', async () => {
    const dir = write(scratch(), {
      'authz.rego': 'package tollgate.authz\n\ndefault allow := false\n\nallow if input.identity.team == "payments"\n',
      'authz_test.rego': 'package tollgate.authz_test\n\nimport data.tollgate.authz\n\ntest_payments if authz.allow with input as {"identity": {"team": "payments"}}\n\ntest_wrong if authz.allow with input as {"identity": {"team": "support"}}\n',
    });
    const r = await policy(['test', dir]);
    assert.equal(r.code, 1);
    assert.match(r.out, /1 passed, 1 failed/);
    assert.ok(r.out.includes(`FAIL  data.tollgate.authz_test.test_wrong (${join(dir, 'authz_test.rego')}:7)`), r.out);

    write(dir, { 'authz.rego': 'package tollgate.authz\n\ndefault allow := false\n\nallow if {\n\tx := input.identity.team\n\ty == x\n}\n' });
    const broken = await policy(['test', dir]);
    assert.equal(broken.code, 1);
    assert.match(broken.out, /does not build/);
    assert.ok(broken.out.includes(`${join(dir, 'authz.rego')}:7`), broken.out);
  });
});
