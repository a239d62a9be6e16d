import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { buildPolicyBundle } from '../../../src/policy/build.js';
import { readBundle } from '../../../src/bundle/archive.js';
import { loadPolicy, type WasmPolicy } from '../../../src/policy/engine.js';
import { buildCallInput, type CallSpec } from '../../../src/toolkit/call-input.js';
import type { RequestSpec } from '../../../src/toolkit/scenario-types.js';
import { cleanup, policy, scratch, write } from './support.js';

/**
 * An opa-envoy-plugin policy written the way that plugin's documentation writes them: package
 * envoy.authz, `default allow := false`, the bearer token verified in Rego, rules on
 * input.attributes.request.http, input.parsed_path and input.parsed_body. It runs unmodified.
 */
const ENVOY_POLICY = `package envoy.authz

import input.attributes.request.http as http_request

default allow := false

allow if {
	is_token_valid
	action_allowed
}

is_token_valid if {
	token.valid
	now := time.now_ns() / 1000000000
	token.payload.nbf <= now
	now < token.payload.exp
}

action_allowed if {
	http_request.method == "POST"
	input.parsed_path == ["mcp"]
	input.parsed_body.method in {"initialize", "tools/list", "notifications/initialized"}
}

action_allowed if {
	http_request.method == "POST"
	input.parsed_path == ["mcp"]
	input.parsed_body.method == "tools/call"
	token.payload.role == "admin"
}

action_allowed if {
	http_request.method == "POST"
	input.parsed_path == ["mcp"]
	input.parsed_body.method == "tools/call"
	token.payload.role == "guest"
	glob.match("search_*", [], input.parsed_body.params.name)
}

token := {"valid": valid, "payload": payload} if {
	[_, encoded] := split(http_request.headers.authorization, " ")
	[valid, _, payload] := io.jwt.decode_verify(encoded, {"secret": "the-shared-secret"})
}
`;

const NOW_S = Math.floor(Date.parse('2026-11-23T10:00:00Z') / 1000);
const NOW_NS = BigInt(NOW_S) * 1_000_000_000n;

async function token(role: string, secret = 'the-shared-secret', nowS = NOW_S): Promise<string> {
  return new SignJWT({ role }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setSubject('alice').setNotBefore(nowS - 60).setExpirationTime(nowS + 3600)
    .sign(new TextEncoder().encode(secret));
}

function call(request: RequestSpec, bearer: string | null, path = '/mcp'): CallSpec {
  return {
    server: 'demo', namespace: 'default', identity: { sub: 'alice' }, budget: null, annotations: null, nowNs: NOW_NS, mode: 'envoy',
    request: { ...request, path, ...(bearer ? { headers: { authorization: `Bearer ${bearer}` } } : {}) },
  };
}

describe('opa-envoy-plugin policies run unmodified (entrypoint envoy)', function () {
  this.timeout(60_000);
  let dir: string;
  let envoy: WasmPolicy;
  before(async () => {
    dir = write(scratch(), { 'policy.rego': ENVOY_POLICY });
    envoy = await loadPolicy(await readBundle(await buildPolicyBundle(dir)), { entrypoint: 'envoy' });
  });
  after(cleanup);

  it('allows and denies on inputs from the production input builder', async () => {
    const guest = await token('guest');
    const admin = await token('admin');
    const decide = (c: CallSpec) => envoy.evaluate(buildCallInput(c), { nowNs: c.nowNs });
    assert.equal(decide(call({ method: 'initialize', params: {} }, guest)).allow, true);
    assert.equal(decide(call({ tool: 'search_docs', arguments: { query: 'x' } }, guest)).allow, true);
    assert.equal(decide(call({ tool: 'delete_records', arguments: {} }, admin)).allow, true);

    const denied = decide(call({ tool: 'delete_records', arguments: {} }, guest));
    assert.deepEqual([denied.allow, denied.reasons], [false, ['denied by envoy.authz.allow']]);
    assert.equal(decide(call({ tool: 'search_docs', arguments: {} }, await token('guest', 'another-secret'))).allow, false, 'bad signature');
    assert.equal(decide(call({ tool: 'search_docs', arguments: {} }, null)).allow, false, 'no token');
    assert.equal(decide(call({ method: 'initialize', params: {} }, guest, '/other')).allow, false, 'parsed_path');
    assert.equal(decide(call({ transport: 'GET' }, admin)).allow, false, 'GET is not a POST');
    // The token expires: evaluated an hour and a half later, the same call is denied.
    const later = call({ tool: 'search_docs', arguments: {} }, guest);
    assert.equal(envoy.evaluate(buildCallInput(later), { nowNs: NOW_NS + 5400n * 1_000_000_000n }).allow, false);
  });

  it('runs scenario files with entrypoint: envoy through tollgate policy test', async () => {
    const guest = await token('guest');
    write(dir, {
      'scenarios/envoy.yaml': `entrypoint: envoy
defaults:
  time: 2026-11-23T10:00:00Z
cases:
  - name: a guest may search
    request: {tool: search_docs, arguments: {query: x}, headers: {authorization: "Bearer ${guest}"}}
    expect: {allow: true}
  - name: a guest may not delete
    request: {tool: delete_records, arguments: {}, headers: {authorization: "Bearer ${guest}"}}
    expect: {allow: false, reasons: [denied by envoy.authz.allow]}
  - name: no token, no entry
    request: {method: initialize}
    expect: {allow: false}
`,
    });
    const r = await policy(['test', dir]);
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /3 passed, 0 failed/);
    assert.ok(r.out.includes(join(dir, 'scenarios/**/*.{yaml,yml}')), r.out);
  });

  it('explains an envoy-mode call, with the rules that let it through', async () => {
    // Valid now: explain's interpreter run reads the wall clock.
    const admin = await token('admin', 'the-shared-secret', Math.floor(Date.now() / 1000));
    const r = await policy(['explain', '--policies', dir, '--entrypoint', 'envoy', '--as', 'alice', '--tool', 'delete_records', '--header', `authorization: Bearer ${admin}`]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /WASM .*: ALLOW/);
    assert.match(r.out, /Interpreter \(opa eval on the Rego source\): ALLOW — agrees with the WASM/);
    for (const [line, head] of [[7, 'allow if {'], [12, 'is_token_valid if {'], [25, 'action_allowed if {'], [40, 'token := {"valid": valid, "payload": payload} if {']] as const) {
      assert.ok(r.out.split('\n').some((l) => l.trim().startsWith(`${join(dir, 'policy.rego')}:${line} `) && l.trim().endsWith(head)), `${line} ${head}\n${r.out}`);
    }
  });
});
