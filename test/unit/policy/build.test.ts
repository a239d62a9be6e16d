import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readBundle } from '../../../src/bundle/archive.js';
import { buildPolicyBundle, checkPolicies, fmtPolicies, PolicyBuildError } from '../../../src/policy/build.js';
import { cleanupDirs, policyDir, REPO_POLICIES } from './fixtures.js';

const minimal = 'package tollgate.authz\n\ndecision := {"allow": true, "reasons": []}\n';

async function manifestOf(bundle: Buffer): Promise<{ revision: string; wasm: Array<{ entrypoint: string }> }> {
  const files = await readBundle(bundle);
  return JSON.parse(files.get('/.manifest')!.toString()) as { revision: string; wasm: Array<{ entrypoint: string }> };
}

async function buildError(p: Promise<unknown>): Promise<PolicyBuildError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof PolicyBuildError, `expected a PolicyBuildError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected the build to fail');
}

describe('policy build (opa build -t wasm)', () => {
  after(cleanupDirs);

  it('builds the example policies with decision, allow and the log mask as entrypoints', async () => {
    const bundle = await buildPolicyBundle(REPO_POLICIES, { revision: 'r-42' });
    const files = await readBundle(bundle);
    const manifest = await manifestOf(bundle);
    assert.equal(manifest.revision, 'r-42');
    const eps = manifest.wasm.map((w) => w.entrypoint);
    for (const e of ['tollgate/authz/decision', 'tollgate/authz/allow', 'system/log/mask']) assert.ok(eps.includes(e), `${e} in ${eps.join(', ')}`);
    assert.ok(files.has('/policy.wasm'));
    assert.ok(files.has('/authz.rego') && files.has('/lib/args.rego'), 'sources are kept in the bundle, under clean paths');
    assert.equal([...files.keys()].filter((f) => f.endsWith('_test.rego')).length, 0, 'test files are left out');
    const data = JSON.parse(files.get('/data.json')!.toString()) as { tollgate: { config: { teams: Record<string, unknown> } } };
    assert.deepEqual(Object.keys(data.tollgate.config.teams).sort(), ['payments', 'readonly', 'support']);
  });

  it('compiles system/log/mask only when the policy defines it', async () => {
    const eps = (await manifestOf(await buildPolicyBundle(policyDir({ 'p.rego': minimal })))).wasm.map((w) => w.entrypoint);
    assert.deepEqual(eps, ['tollgate/authz/decision']);
  });

  it('compiles a bare boolean allow policy and an opa-envoy-plugin policy', async () => {
    const allowOnly = policyDir({ 'p.rego': 'package tollgate.authz\n\ndefault allow := false\n\nallow if input.identity.team == "payments"\n' });
    assert.deepEqual((await manifestOf(await buildPolicyBundle(allowOnly))).wasm.map((w) => w.entrypoint), ['tollgate/authz/allow']);
    const envoy = policyDir({ 'p.rego': 'package envoy.authz\n\ndefault allow := false\n\nallow if input.attributes.request.http.method == "GET"\n' });
    assert.deepEqual((await manifestOf(await buildPolicyBundle(envoy))).wasm.map((w) => w.entrypoint), ['envoy/authz/allow']);
  });

  it('honours explicit entrypoints', async () => {
    const dir = policyDir({ 'p.rego': minimal + '\nextra := 1\n' });
    const eps = (await manifestOf(await buildPolicyBundle(dir, { entrypoints: ['tollgate/authz/extra'] }))).wasm.map((w) => w.entrypoint);
    assert.deepEqual(eps, ['tollgate/authz/extra']);
    await assert.rejects(buildPolicyBundle(dir, { entrypoints: ['data.tollgate.authz.extra'] }), /not a slash-separated rule path/);
  });

  it('refuses a policy that decides nothing, saying what to write', async () => {
    const e = await buildError(buildPolicyBundle(policyDir({ 'p.rego': 'package other\n\nx := 1\n' })));
    assert.match(e.message, /defines no decision: write a rule "decision"/);
  });

  it('ignores test files and scenario YAML, even broken ones', async () => {
    const dir = policyDir({
      'p.rego': minimal,
      'p_test.rego': 'package tollgate.authz_test\n\ntest_x if { http.send({"method": "GET", "url": "http://x"}) }\n',
      'scenarios.yaml': 'cases:\n  - name: [unclosed\n',
      'lib/more_scenarios.yml': 'not: [valid',
    });
    const files = await readBundle(await buildPolicyBundle(dir));
    assert.deepEqual([...files.keys()].filter((f) => !f.startsWith('/.') && f !== '/policy.wasm' && f !== '/data.json'), ['/p.rego']);
  });

  it('puts nested data.json files at their directory path', async () => {
    const dir = policyDir({ 'p.rego': 'package tollgate.authz\n\ndecision := {"allow": data.limits.max > 1}\n', 'limits/data.json': '{"max": 5}', 'data.json': '{"teams": {}}' });
    const data = JSON.parse((await readBundle(await buildPolicyBundle(dir))).get('/data.json')!.toString()) as unknown;
    assert.deepEqual(data, { limits: { max: 5 }, teams: {} });
  });

  it('reports a strict-mode error at file:line:col, with the directory as given', async () => {
    const dir = policyDir({ 'p.rego': minimal, 'lib/bad.rego': 'package tollgate.lib.bad\n\nimport data.unused\n\nf := y\n' });
    const e = await buildError(buildPolicyBundle(dir));
    const badFile = join(dir, 'lib/bad.rego');
    assert.ok(e.problems.some((p) => p.file === badFile && p.line === 5 && /var y is unsafe/.test(p.message)), JSON.stringify(e.problems));
    assert.match(e.message, new RegExp(`${badFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:5:\\d+: rego_unsafe_var_error: var y is unsafe`));
  });

  it('reports a parse error at its line', async () => {
    const e = await buildError(buildPolicyBundle(policyDir({ 'p.rego': minimal + '\nbroken if {\n' })));
    assert.ok(e.problems.some((p) => p.file?.endsWith('p.rego') && p.line !== null && p.code === 'rego_parse_error'), JSON.stringify(e.problems));
  });

  it('refuses builtins the WASM runtime cannot answer, at the line that calls them', async () => {
    const dir = policyDir({ 'p.rego': 'package tollgate.authz\n\ndecision := {"allow": r.status_code == 200} if {\n\tr := http.send({"method": "GET", "url": "http://example.com"})\n}\n' });
    const e = await buildError(buildPolicyBundle(dir));
    const p = e.problems.find((x) => /http\.send/.test(x.message));
    assert.ok(p, e.message);
    assert.equal(p.line, 4);
    assert.match(p.message, /not one Tollgate can evaluate in WebAssembly/);
  });

  it('accepts every builtin Tollgate supplies', async () => {
    const dir = policyDir({ 'p.rego': [
      'package tollgate.authz', '',
      'decision := {"allow": true, "v": [time.now_ns(), time.parse_rfc3339_ns("2026-01-01T00:00:00Z"), time.parse_duration_ns("1h"),',
      '\ttime.date(0), time.clock(0), time.weekday(0), time.add_date(0, 1, 0, 0), crypto.sha256("a"), crypto.hmac.sha256("a", "k"),',
      '\tio.jwt.decode(input.t), io.jwt.verify_rs256(input.t, "k"), io.jwt.decode_verify(input.t, {"secret": "s"}),',
      '\tsprintf("%s", ["a"]), regex.match("a", "a"), net.cidr_contains("10.0.0.0/8", "10.1.1.1"), net.cidr_is_valid("10.0.0.0/8")]}', '',
    ].join('\n') });
    const files = await readBundle(await buildPolicyBundle(dir));
    assert.ok(files.has('/policy.wasm'));
  });

  it('fails clearly on a missing directory or a file', async () => {
    await assert.rejects(buildPolicyBundle('/nonexistent/policies'), /policy directory "\/nonexistent\/policies" does not exist/);
    const dir = policyDir({ 'p.rego': minimal });
    await assert.rejects(buildPolicyBundle(join(dir, 'p.rego')), /is not a directory/);
  });
});

describe('policy check and fmt', () => {
  after(cleanupDirs);

  it('passes the example policies, tests included', async () => {
    await checkPolicies(REPO_POLICIES);
  });

  it('finds errors in test files too, unless told to skip them', async () => {
    const dir = policyDir({ 'p.rego': minimal, 'p_test.rego': 'package tollgate.authz_test\n\ntest_x if {\n\tz == 1\n}\n' });
    const e = await buildError(checkPolicies(dir));
    assert.ok(e.problems.some((p) => p.file?.endsWith('p_test.rego') && p.line === 4), e.message);
    await checkPolicies(dir, { tests: false });
  });

  it('lists unformatted files, then rewrites them', async () => {
    const dir = policyDir({ 'ok.rego': minimal, 'messy.rego': 'package tollgate.messy\nx:=1\n' });
    assert.deepEqual((await fmtPolicies(dir, { write: false })).files, [join(dir, 'messy.rego')]);
    assert.equal(readFileSync(join(dir, 'messy.rego'), 'utf8'), 'package tollgate.messy\nx:=1\n');
    assert.deepEqual((await fmtPolicies(dir, { write: true })).files, [join(dir, 'messy.rego')]);
    assert.equal(readFileSync(join(dir, 'messy.rego'), 'utf8'), 'package tollgate.messy\n\nx := 1\n');
    assert.deepEqual((await fmtPolicies(dir, { write: false })).files, []);
  });

  it('reports a file that does not parse', async () => {
    const dir = policyDir({ 'bad.rego': 'package x\n\nf if {\n' });
    const e = await buildError(fmtPolicies(dir, { write: false }));
    assert.match(e.message, /bad\.rego:\d+/);
  });
});
