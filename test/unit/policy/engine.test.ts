import { strict as assert } from 'node:assert';
import { gzipSync } from 'node:zlib';
import { readBundle, writeBundle, type BundleFiles } from '../../../src/bundle/archive.js';
import { buildPolicyBundle, LOGGED_ENTRYPOINT } from '../../../src/policy/build.js';
import { loadPolicy, loadPolicyFromDir, MASK_FAILURE_RESULT, type WasmPolicy } from '../../../src/policy/engine.js';
import type { PolicyInput } from '../../../src/contract/policy.js';
import { anonymous, cleanupDirs, mcpInput, person, policyDir, REPO_POLICIES, toolCall } from './fixtures.js';

async function filesOf(rego: Record<string, string>, opts: { entrypoints?: string[]; revision?: string } = {}): Promise<BundleFiles> {
  return readBundle(await buildPolicyBundle(policyDir(rego), opts));
}

describe('policy engine: the example policies', () => {
  let policy: WasmPolicy;
  const payments = person('payments');
  const support = person('support');
  const dba = person('support', ['dba'], 'dora');

  before(async () => {
    policy = await loadPolicyFromDir(REPO_POLICIES);
  });
  after(cleanupDirs);

  it('exposes entrypoints, a content revision and the mask rule', () => {
    for (const e of ['tollgate/authz/decision', 'tollgate/authz/allow', 'system/log/mask']) assert.ok(policy.entrypoints.includes(e));
    assert.match(policy.revision, /^sha256:[0-9a-f]{16}$/);
    assert.equal(policy.hasMask, true);
    assert.equal(policy.mode, 'tollgate');
  });

  it('allows a read for any authenticated team and session methods for everyone signed in', () => {
    assert.deepEqual(policy.evaluate(toolCall('search_docs', { query: 'refunds' }, person('readonly'))), {
      allow: true, reasons: [], headers: {}, httpStatus: null, mask: [], cost: null,
    });
    for (const m of ['initialize', 'ping', 'tools/list', 'notifications/initialized']) assert.equal(policy.evaluate(mcpInput(m, support)).allow, true, m);
    assert.equal(policy.evaluate(mcpInput(null, support)).allow, true, 'GET stream');
  });

  it('denies with reasons that say what to do', () => {
    const d = policy.evaluate(toolCall('run_sql', { query: 'SELECT 1' }, support));
    assert.equal(d.allow, false);
    assert.deepEqual(d.reasons, ['Team support may not use tool run_sql (a query tool). It may use: create_ticket, get_customer, search_docs. Ask your team lead to request access.']);
    const anon = policy.evaluate(mcpInput('initialize', anonymous));
    assert.equal(anon.allow, false);
    assert.match(anon.reasons[0]!, /no verified identity/);
  });

  it('applies argument constraints, to DBAs too', () => {
    assert.equal(policy.evaluate(toolCall('delete_records', { table: 'refunds', where: 'id = 9' }, dba)).allow, true);
    const d = policy.evaluate(toolCall('delete_records', { table: 'refunds', where: '1=1' }, dba));
    assert.equal(d.allow, false);
    assert.match(d.reasons.join('\n'), /"1=1" matches every row/);
    const sql = policy.evaluate(toolCall('run_sql', { query: 'DROP TABLE orders' }, payments));
    assert.ok(sql.reasons.some((r) => r.includes('it is a DROP statement; allowed: SELECT')), sql.reasons.join('\n'));
  });

  it('answers tools/list filtering (input.mcp.listing) by team and group, never by arguments', () => {
    // As authz asks for each listed tool: a tools/call of it with no arguments, marked as a listing.
    const tools = ['search_docs', 'get_customer', 'create_ticket', 'run_sql', 'delete_records'];
    const visible = (who: ReturnType<typeof person>): string[] => tools.filter((tool) => {
      const input = mcpInput('tools/call', who, { tool, arguments: null, params: { name: tool }, listing: true });
      return policy.evaluate(input).allow;
    });
    assert.deepEqual(visible(support), ['search_docs', 'get_customer', 'create_ticket']);
    assert.deepEqual(visible(payments), ['search_docs', 'get_customer', 'create_ticket', 'run_sql']);
    assert.deepEqual(visible(dba), ['search_docs', 'get_customer', 'create_ticket', 'delete_records']);
    assert.deepEqual(visible(anonymous), []);
    // The same call, not a listing, is judged on its (missing) arguments.
    const real = policy.evaluate(mcpInput('tools/call', support, { tool: 'search_docs', arguments: null, params: { name: 'search_docs' } }));
    assert.equal(real.allow, false);
    assert.match(real.reasons.join('\n'), /Argument query is required/);
  });

  it('returns mask paths for credential fields and a budget header', () => {
    const input = toolCall('search_docs', { query: 'x', api_key: 'k' }, payments);
    input.budget = { estimated_tokens: 2, budgets: [{ name: 'payments-daily', scope: { team: 'payments' }, limit: 1000, used: 990, remaining: 10, window: 'day', resets_at: '2026-11-24T00:00:00.000Z', action: 'deny' }] };
    const d = policy.evaluate(input);
    assert.equal(d.allow, true);
    assert.deepEqual(d.mask, ['/input/mcp/arguments/api_key']);
    assert.deepEqual(d.headers, { 'x-tollgate-budget-warning': 'budget payments-daily has 10 of 1000 tokens left' });
  });

  it('evaluates the log mask with the decision-log event as input (OPA semantics)', () => {
    const m = policy.evaluateMask(toolCall('create_ticket', { title: 't', body: 'mail ada@example.com', priority: 'low' }, payments), { result: { allow: true } });
    assert.deepEqual(m, [
      { op: 'upsert', path: '/input/mcp/arguments/body', value: '[personal data]' },
      '/input/identity/claims/email',
      '/input/identity/claims/name',
    ]);
  });

  it('enforces a configured change window with the host time builtins', async () => {
    const files = await readBundle(await buildPolicyBundle(REPO_POLICIES));
    const data = JSON.parse(files.get('/data.json')!.toString()) as { tollgate: { config: Record<string, unknown> } };
    data.tollgate.config.change_window = { days: ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday'], from_hour: 8, to_hour: 18, tz: 'Europe/Berlin' };
    files.set('/data.json', Buffer.from(JSON.stringify(data)));
    const windowed = await loadPolicy(files);
    const call = toolCall('delete_records', { table: 'refunds', where: 'id = 9' }, dba);
    const at = (iso: string): bigint => BigInt(Date.parse(iso)) * 1_000_000n;
    assert.equal(windowed.evaluate(call, { nowNs: at('2026-11-23T09:30:00Z') }).allow, true, 'Monday 10:30 in Berlin');
    const late = windowed.evaluate(call, { nowNs: at('2026-11-23T17:30:00Z') });
    assert.equal(late.allow, false, 'Monday 18:30 in Berlin');
    assert.deepEqual(late.reasons, ['Destructive tools may only run during the change window (Monday, Tuesday, Wednesday, Thursday, Friday 08:00-18:00 Europe/Berlin). Try again then, or ask for an emergency change.']);
    assert.equal(windowed.evaluate(call, { nowNs: at('2026-11-22T10:00:00Z') }).allow, false, 'Sunday');
  });

  it('serves 10,000 varied calls in a row with the right answers', () => {
    const tools: Array<[string, Record<string, unknown>, boolean]> = [
      ['search_docs', { query: 'refunds' }, true],
      ['get_customer', { customer_id: 'cus_1001' }, true],
      ['get_customer', { customer_id: 'nope' }, false],
      ['create_ticket', { title: 'T', body: 'b', priority: 'low' }, true],
      ['create_ticket', { title: 'T', body: 'b', priority: 'whenever' }, false],
      ['run_sql', { query: 'SELECT 1' }, true],
      ['delete_records', { table: 'refunds', where: 'id = 1' }, false],
    ];
    const before = policy.stats;
    let allowed = 0;
    let expected = 0;
    for (let i = 0; i < 10_000; i++) {
      const [tool, args, expect] = tools[i % tools.length]!;
      // Arguments grow with i, so memory use varies from call to call.
      const d = policy.evaluate(toolCall(tool, { ...args, note: 'n'.repeat(i % 97) }, payments));
      assert.equal(d.allow, expect, `call ${i}: ${tool} ${d.reasons.join('; ')}`);
      if (d.allow) allowed++;
      if (expect) expected++;
    }
    assert.equal(allowed, expected);
    assert.equal(policy.stats.failures, before.failures, 'no evaluation failed');
  });
});

describe('policy engine: contract forms', () => {
  after(cleanupDirs);

  it('takes a bare boolean allow rule', async () => {
    const p = await loadPolicy(await filesOf({ 'p.rego': 'package tollgate.authz\n\ndefault allow := false\n\nallow if input.identity.team == "payments"\n' }));
    assert.equal(p.evaluate(toolCall('x', {}, person('payments'))).allow, true);
    const d = p.evaluate(toolCall('x', {}, person('support')));
    assert.equal(d.allow, false);
    assert.match(d.reasons[0]!, /data\.tollgate\.authz\.allow is false/);
  });

  it('uses allow when decision is undefined for an input', async () => {
    const p = await loadPolicy(await filesOf({ 'p.rego': [
      'package tollgate.authz', '',
      'decision := {"allow": false, "reasons": ["weekend"]} if input.mcp.tool == "weekend"', '',
      'allow if input.mcp.tool == "ok"', '',
    ].join('\n') }));
    assert.deepEqual(p.evaluate(toolCall('weekend', {}, person('a'))).reasons, ['weekend']);
    assert.equal(p.evaluate(toolCall('ok', {}, person('a'))).allow, true);
    const none = p.evaluate(toolCall('other', {}, person('a')));
    assert.equal(none.allow, false);
    assert.match(none.reasons[0]!, /no rule decided this call/);
  });

  it('passes headers, http_status and cost through', async () => {
    const p = await loadPolicy(await filesOf({ 'p.rego': 'package tollgate.authz\n\ndecision := {"allow": false, "reasons": {"b", "a"}, "headers": {"x-policy": "strict"}, "http_status": 429, "cost": 5}\n' }));
    const d = p.evaluate(toolCall('x', {}, person('a')));
    assert.deepEqual({ ...d, reasons: [...d.reasons].sort() }, { allow: false, reasons: ['a', 'b'], headers: { 'x-policy': 'strict' }, httpStatus: 429, mask: [], cost: 5 });
  });

  it('denies a malformed decision instead of guessing', async () => {
    const p = await loadPolicy(await filesOf({ 'p.rego': 'package tollgate.authz\n\ndecision := {"allow": "yes", "reasons": []}\n' }));
    const d = p.evaluate(toolCall('x', {}, person('a')));
    assert.equal(d.allow, false);
    assert.match(d.reasons[0]!, /policy returned an invalid decision: "allow" is string "yes", not a boolean/);
  });

  it('denies on a runtime error, names the rule location, and keeps serving', async () => {
    const p = await loadPolicy(await filesOf({ 'p.rego': [
      'package tollgate.authz', '',
      'decision := {"allow": true} if input.mcp.tool == "ok"', '',
      'decision := {"allow": true} if input.mcp.tool == "twice"', '',
      'decision := {"allow": false, "reasons": ["conflict"]} if input.mcp.tool == "twice"', '',
      'decision := {"allow": pick(input.mcp.arguments.x) == 1} if input.mcp.tool == "fn"', '',
      'pick(_) := 1', '',
      'pick(x) := 2 if x > 0', '',
    ].join('\n') }));
    const conflict = p.evaluate(toolCall('twice', {}, person('a')));
    assert.equal(conflict.allow, false);
    assert.match(conflict.reasons[0]!, /^policy evaluation failed: p\.rego:\d+:\d+: .*conflict/);
    const fn = p.evaluate(toolCall('fn', { x: 1 }, person('a')));
    assert.equal(fn.allow, false);
    assert.match(fn.reasons[0]!, /^policy evaluation failed: p\.rego:\d+:\d+: .*conflict/);
    assert.equal(p.evaluate(toolCall('fn', { x: -1 }, person('a'))).allow, true, 'one output for this input: no conflict');
    // Hundreds of failures in a row once corrupted a reused instance; each now gets a fresh one.
    for (let i = 0; i < 1500; i++) assert.equal(p.evaluate(toolCall(i % 2 ? 'twice' : 'ok', {}, person('a'))).allow, i % 2 === 0);
    assert.ok(p.stats.failures >= 751);
    assert.equal(p.evaluate(toolCall('ok', {}, person('a'))).allow, true);
  });

  it('denies when a builtin the SDK implements throws (sprintf with an unsupported verb)', async () => {
    const p = await loadPolicy(await filesOf({ 'p.rego': 'package tollgate.authz\n\ndecision := {"allow": true, "reasons": [sprintf("%q", [input.mcp.tool])]}\n' }));
    const d = p.evaluate(toolCall('x', {}, person('a')));
    assert.equal(d.allow, false);
    assert.match(d.reasons[0]!, /^policy evaluation failed: .*placeholder/);
  });

  it('denies when the input needs more memory than the policy may use, then recovers', async () => {
    const p = await loadPolicy(await filesOf({ 'p.rego': 'package tollgate.authz\n\ndecision := {"allow": count(input.mcp.arguments.blob) > 0}\n' }), { limits: { maximumPages: 64 } });
    const big = p.evaluate(toolCall('x', { blob: 'x'.repeat(8 * 1024 * 1024) }, person('a')));
    assert.equal(big.allow, false);
    assert.match(big.reasons[0]!, /^policy evaluation failed: /);
    assert.equal(p.evaluate(toolCall('x', { blob: 'small' }, person('a'))).allow, true);
  });

  it('compiles a regex.match pattern once for many calls, and resets the heap once it has grown past its epoch', async () => {
    const rego = [
      'package tollgate.authz', '',
      'decision := {"allow": regex.match(`^[a-z][a-z0-9_-]{2,31}@example\\.(com|org)$`, input.mcp.arguments.email)}', '',
    ].join('\n');
    const epoch = 256 * 1024;
    const p = await loadPolicy(await filesOf({ 'p.rego': rego }), { limits: { heapEpochBytes: epoch } });
    const call = (email: string): PolicyInput => toolCall('x', { email }, person('a'));
    assert.equal(p.evaluate(call('ada@example.com')).allow, true);
    const first = p.stats.heapBytes;
    assert.equal(p.evaluate(call('bob@example.org')).allow, true);
    const second = p.stats.heapBytes - first;
    // The heap is kept between calls, and the second call reused the compiled pattern: it left
    // less than the first, which compiled it.
    assert.ok(second > 0, `the heap was reset between calls (${first} then ${p.stats.heapBytes} bytes)`);
    assert.ok(second < first, `the second call left ${second} bytes, the first ${first}: the pattern was compiled again`);
    let peak = 0;
    for (let i = 0; i < 3000; i++) {
      const ok = i % 3 !== 0;
      assert.equal(p.evaluate(call(ok ? `user${i}@example.com` : `User${i}@example.net`)).allow, ok, String(i));
      peak = Math.max(peak, p.stats.heapBytes);
    }
    assert.ok(peak <= epoch + 64 * 1024, `heap reached ${peak} bytes with an epoch of ${epoch}`);
    assert.ok(p.stats.heapBytes < peak, 'the heap was never reset');
    assert.equal(p.stats.failures, 0);
  });

  it('evaluates an opa-envoy-plugin policy written as its documentation shows', async () => {
    const rego = [
      'package envoy.authz', '',
      'import input.attributes.request.http', '',
      'default allow := false', '',
      'allow if {', '\thttp.method == "POST"', '\tinput.parsed_path == ["mcp"]', '\tinput.parsed_body.method == "tools/list"', '}', '',
      'allow := {"allowed": false, "headers": {"x-ext-auth-allow": "no"}, "body": "Unauthorized Request", "http_status": 403} if {',
      '\thttp.method == "POST"', '\tinput.parsed_body.method == "tools/call"', '}', '',
    ].join('\n');
    const p = await loadPolicy(await filesOf({ 'policy.rego': rego }), { entrypoint: 'envoy' });
    assert.equal(p.mode, 'envoy');
    assert.equal(p.evaluate(mcpInput('tools/list', person('a'))).allow, true);
    assert.deepEqual(p.evaluate(toolCall('x', {}, person('a'))), {
      allow: false, reasons: ['Unauthorized Request'], headers: { 'x-ext-auth-allow': 'no' }, httpStatus: 403, mask: [], cost: null,
    });
    const other = p.evaluate(mcpInput('ping', person('a')));
    assert.equal(other.allow, false);
    assert.deepEqual(other.reasons, ['denied by envoy.authz.allow']);
    await assert.rejects(loadPolicy(await filesOf({ 'policy.rego': rego })), /bundle has neither tollgate\/authz\/decision nor tollgate\/authz\/allow.*policy\.entrypoint: envoy/);
  });

  it('refuses a tollgate bundle in envoy mode', async () => {
    await assert.rejects(loadPolicy(await filesOf({ 'p.rego': 'package tollgate.authz\n\nallow := true\n' }), { entrypoint: 'envoy' }), /no envoy\/authz\/allow entrypoint/);
  });

  it('reads the revision from the manifest unless told otherwise', async () => {
    const files = await filesOf({ 'p.rego': 'package tollgate.authz\n\nallow := true\n' }, { revision: 'v7' });
    assert.equal((await loadPolicy(files)).revision, 'v7');
    assert.equal((await loadPolicy(files, { revision: 'override' })).revision, 'override');
  });

  it('loads data from the bundle, including nested data files', async () => {
    const files = await filesOf({ 'p.rego': 'package tollgate.authz\n\ndecision := {"allow": input.identity.team in data.teams.allowed, "reasons": [data.msg]}\n', 'data.json': '{"msg": "hi"}' });
    files.delete('/data.json');
    files.set('/data.json', Buffer.from('{"msg": "from root"}'));
    files.set('/teams/data.json', Buffer.from('{"allowed": ["payments"]}'));
    const p = await loadPolicy(files);
    assert.deepEqual(p.evaluate(toolCall('x', {}, person('payments'))).reasons, ['from root']);
    assert.equal(p.evaluate(toolCall('x', {}, person('payments'))).allow, true);
    assert.equal(p.evaluate(toolCall('x', {}, person('support'))).allow, false);
  });

  it('pins time.now_ns to a given instant for replay', async () => {
    const p = await loadPolicy(await filesOf({ 'p.rego': 'package tollgate.authz\n\ndecision := {"allow": time.now_ns() < input.request.time_ns, "reasons": ["late"]}\n' }));
    const input = toolCall('x', {}, person('a'));
    assert.equal(p.evaluate(input, { nowNs: BigInt(input.request.time_ns) - 1n }).allow, true);
    assert.equal(p.evaluate(input, { nowNs: BigInt(input.request.time_ns) + 1_000_000_000n }).allow, false);
    assert.equal(p.evaluate({ ...input, request: { ...input.request, time_ns: 4e18 } }).allow, true, 'the wall clock is before 2096');
    assert.equal(p.evaluate({ ...input, request: { ...input.request, time_ns: 1e18 } }).allow, false, 'and after 2001');
  });

  it('returns raw entrypoint results for tooling', async () => {
    const p = await loadPolicy(await filesOf({ 'p.rego': 'package tollgate.authz\n\ndecision := {"allow": true}\n\nextra := input.n * 2 if input.n > 0\n' }, { entrypoints: ['tollgate/authz/decision', 'tollgate/authz/extra'] }));
    assert.deepEqual(p.evaluateEntrypoint('tollgate/authz/extra', { n: 21 }), { ok: true, defined: true, value: 42 });
    assert.deepEqual(p.evaluateEntrypoint('tollgate/authz/extra', { n: -1 }), { ok: true, defined: false });
    const missing = p.evaluateEntrypoint('tollgate/authz/nope', {});
    assert.equal(missing.ok, false);
    assert.equal(p.evaluateMask(toolCall('x', {}, person('a'))), undefined, 'no mask rule');
  });

  it('erases the whole input from the log when the mask rule fails', async () => {
    const p = await loadPolicy(await filesOf({
      'p.rego': 'package tollgate.authz\n\nallow := true\n',
      'mask.rego': 'package system.log\n\nmask contains "/input/a" if input.input.mcp.tool == "ok"\n\nmask contains "/input/b" if two(input.input.mcp.tool) == 2\n\ntwo(_) := 2\n\ntwo(x) := 3 if x == "bad"\n',
    }));
    assert.ok(p.hasMask);
    assert.deepEqual(p.evaluateMask(toolCall('ok', {}, person('a'))), ['/input/a', '/input/b']);
    assert.deepEqual(p.evaluateMask(toolCall('bad', {}, person('a'))), [...MASK_FAILURE_RESULT]);
  });
});

describe('policy engine: decision and log mask in one evaluation', () => {
  after(cleanupDirs);

  it('answers the same decision and mask as two evaluations, once the log has asked for a mask', async () => {
    const combined = await loadPolicyFromDir(REPO_POLICIES);
    const separate = await loadPolicyFromDir(REPO_POLICIES);
    assert.ok(combined.entrypoints.includes(LOGGED_ENTRYPOINT));
    const calls = [
      toolCall('create_ticket', { title: 't', body: 'mail ada@example.com, card 4111 1111 1111 1111', priority: 'low' }, person('payments')),
      toolCall('run_sql', { query: 'SELECT 1' }, person('support')),
      toolCall('search_docs', { query: 'refunds', api_key: 'abc' }, person('readonly')),
      mcpInput('initialize', anonymous),
    ];
    combined.evaluateMask(calls[0]!);
    const before = combined.stats.evaluations;
    for (const input of calls) {
      const d = combined.evaluate(input);
      assert.deepEqual(d, separate.evaluate(input));
      assert.deepEqual(combined.evaluateMask(input), separate.evaluateMask(input));
    }
    assert.equal(combined.stats.evaluations - before, calls.length, 'one evaluation per logged call');
    assert.deepEqual(combined.evaluateMask(calls[0]!), separate.evaluateMask(calls[0]!), 'a mask asked again is evaluated again');
  });

  it('falls back to separate evaluations when the mask rule fails, erasing the input', async () => {
    const p = await loadPolicy(await filesOf({
      'p.rego': 'package tollgate.authz\n\ndecision := {"allow": input.mcp.tool != "no"}\n',
      'mask.rego': 'package system.log\n\nmask contains "/input/a" if input.input.mcp.tool == "ok"\n\nmask contains "/input/b" if two(input.input.mcp.tool) == 2\n\ntwo(_) := 2\n\ntwo(x) := 3 if x == "bad"\n',
    }));
    assert.ok(p.entrypoints.includes(LOGGED_ENTRYPOINT));
    p.evaluateMask(toolCall('ok', {}, person('a')));
    const ok = toolCall('ok', {}, person('a'));
    assert.equal(p.evaluate(ok).allow, true);
    assert.deepEqual(p.evaluateMask(ok), ['/input/a', '/input/b']);
    const bad = toolCall('bad', {}, person('a'));
    assert.equal(p.evaluate(bad).allow, true, 'the decision does not depend on the mask');
    assert.deepEqual(p.evaluateMask(bad), [...MASK_FAILURE_RESULT]);
    assert.equal(p.evaluate(toolCall('no', {}, person('a'))).allow, false);
  });
});

describe('policy engine: broken bundles', () => {
  let good: BundleFiles;
  before(async () => {
    good = await filesOf({ 'p.rego': 'package tollgate.authz\n\nallow := true\n' });
  });
  after(cleanupDirs);

  const copy = (): BundleFiles => new Map(good);

  it('refuses corrupted archive bytes', async () => {
    const bytes = await writeBundle(good);
    const broken = Buffer.from(bytes);
    broken.fill(0x41, 20, 200);
    await assert.rejects(readBundle(broken), /bundle is not a valid (gzip|tar) archive|empty/);
    await assert.rejects(readBundle(gzipSync(Buffer.from('no tar here'.repeat(100)))), /tar archive|empty/);
  });

  it('refuses a bundle without policy.wasm, saying how to build one', async () => {
    const files = copy();
    files.delete('/policy.wasm');
    await assert.rejects(loadPolicy(files), /bundle has no \/policy\.wasm: it was not built with `opa build -t wasm`/);
  });

  it('refuses a policy.wasm that is not WebAssembly', async () => {
    const files = copy();
    files.set('/policy.wasm', Buffer.from('not wasm at all'));
    await assert.rejects(loadPolicy(files), /policy\.wasm is not a valid WebAssembly module/);
    const truncated = copy();
    truncated.set('/policy.wasm', good.get('/policy.wasm')!.subarray(0, 1000));
    await assert.rejects(loadPolicy(truncated), /policy\.wasm is not a valid WebAssembly module/);
  });

  it('refuses bad data and a bad manifest', async () => {
    const data = copy();
    data.set('/data.json', Buffer.from('{"a": '));
    await assert.rejects(loadPolicy(data), /bundle data file \/data\.json does not parse/);
    const notObject = copy();
    notObject.set('/data.json', Buffer.from('[1]'));
    await assert.rejects(loadPolicy(notObject), /must hold a JSON object/);
    const conflict = copy();
    conflict.set('/data.json', Buffer.from('{"a": {"b": 1}}'));
    conflict.set('/a/data.json', Buffer.from('{"b": 2}'));
    await assert.rejects(loadPolicy(conflict), /bundle data conflict at \/a\/b/);
    const manifest = copy();
    manifest.set('/.manifest', Buffer.from('{revision'));
    await assert.rejects(loadPolicy(manifest), /bundle \/\.manifest is not valid JSON/);
  });

  it('refuses a module that calls a builtin nobody answers', async () => {
    // Built with opa directly (no Tollgate capabilities), as a foreign bundle would be.
    const { runOpa } = await import('../../../src/policy/opa-cli.js');
    const dir = policyDir({ 'p.rego': 'package tollgate.authz\n\ndecision := {"allow": true, "id": uuid.rfc4122("x")}\n' });
    const run = await runOpa(['build', '-t', 'wasm', '-b', '-e', 'tollgate/authz/decision', '-o', 'b.tar.gz', '.'], { cwd: dir });
    assert.equal(run.code, 0, run.stderr);
    const { readFile } = await import('node:fs/promises');
    const files = await readBundle(await readFile(`${dir}/b.tar.gz`));
    await assert.rejects(loadPolicy(files), /calls builtin\(s\) uuid\.rfc4122, which Tollgate cannot evaluate/);
  });
});

// Keeps the PolicyInput import honest: the fixtures produce the real type.
const _typecheck: PolicyInput = toolCall('x', {}, person(null));
void _typecheck;
