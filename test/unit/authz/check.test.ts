import { strict as assert } from 'node:assert';
import { Authorizer, defaultMasker, type CheckDeps } from '../../../src/authz/check.js';
import { PendingCalls } from '../../../src/authz/pending.js';
import type { HttpRequestView } from '../../../src/authz/view.js';
import { AuthError, type Identity, type TokenVerifier } from '../../../src/identity/types.js';
import { PolicyHolder } from '../../../src/policy/holder.js';
import type { Decision, PolicyEvaluator, PolicyInput } from '../../../src/policy/types.js';
import type { DecisionRecordDraft, DecisionSink } from '../../../src/decisionlog/types.js';
import type { BudgetGate } from '../../../src/budget/types.js';

const alice: Identity = {
  sub: 'alice', iss: 'https://issuer', aud: ['r'], team: 'payments', groups: [], agent: 'bot', scopes: [], delegation: [], expiresAt: 2e9, claims: { sub: 'alice' },
};

/** Accepts exactly "good" and refuses everything else the way the real verifier classifies it. */
const verifier: TokenVerifier = {
  async verify(token) {
    if (token === 'good') return alice;
    if (token === 'expired') throw new AuthError('expired', 'token expired at 2020-01-01T00:00:00Z');
    throw new AuthError('bad_signature', 'signature does not verify');
  },
};

/** A policy with the contract's shape: allows search_docs, denies the rest with a reason. */
class ToolListPolicy implements PolicyEvaluator {
  readonly revision = 'rev-7';
  inputs: PolicyInput[] = [];
  evaluate(input: PolicyInput): Decision {
    this.inputs.push(input);
    const ok = input.mcp.method !== 'tools/call' || input.mcp.tool === 'search_docs';
    return { allow: ok, reasons: ok ? [] : [`tool ${input.mcp.tool} is not allowed for team ${input.identity.team}`], headers: ok ? { 'x-policy': 'yes' } : {}, httpStatus: null, mask: [], cost: null };
  }
}

class MemorySink implements DecisionSink {
  records: DecisionRecordDraft[] = [];
  append(r: DecisionRecordDraft): void { this.records.push(r); }
  async close(): Promise<void> {}
}

function request(body: unknown, headers: Record<string, string> = { authorization: 'Bearer good' }, method = 'POST'): HttpRequestView {
  return {
    id: 'req-1', method, path: '/mcp', query: '', host: '127.0.0.1:10000', scheme: 'http', protocol: 'HTTP/1.1',
    headers: { 'mcp-session-id': 'sess-1', ...headers }, body: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
    truncated: false, context: { server: 'billing', namespace: 'prod' }, source: { address: '127.0.0.1:5', principal: '' },
    destination: { address: '127.0.0.1:10000', principal: '' }, traceId: null,
  };
}

const call = (tool: string, id: number | string = 1) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: tool, arguments: { q: 'x' } } });

function setup(over: Partial<CheckDeps> = {}, settings: Partial<CheckDeps['settings']> = {}) {
  const policy = new ToolListPolicy();
  const holder = new PolicyHolder();
  holder.swap(policy);
  const sink = new MemorySink();
  const pending = new PendingCalls();
  const deps: CheckDeps = {
    settings: {
      instanceId: 'authz-test', version: '0.1.0', defaultScope: { server: 'default', namespace: 'default' },
      resourceMetadataUrl: 'http://127.0.0.1:10000/.well-known/oauth-protected-resource/mcp',
      limits: { maxBytes: 4096, maxDepth: 16, maxBatch: 8 }, denyStatus: 200, upstreamAuthorization: null, ...settings,
    },
    verifier, policy: holder, budget: null, sink, pending, annotations: null, countTokens: null, mask: defaultMasker, policyMask: null, clock: () => Date.parse('2026-11-23T10:00:00Z'),
    ...over,
  };
  return { authz: new Authorizer(deps), policy, sink, pending, holder };
}

describe('Authorizer.check', () => {
  it('allows a permitted call, strips the caller token and tags the request', async () => {
    const { authz, sink, pending, policy } = setup();
    const out = await authz.check(request(call('search_docs')));
    assert.ok(out.allow);
    assert.deepEqual(out.removeHeaders, ['authorization']);
    assert.equal(out.headers['x-policy'], 'yes');
    const id = out.headers['x-tollgate-decision-id']!;
    assert.match(id, /^[0-9a-f-]{36}$/);
    assert.equal(pending.peek(id)?.tool, 'search_docs');
    const input = policy.inputs[0]!;
    assert.equal(input.mcp.server, 'billing');
    assert.equal(input.mcp.namespace, 'prod');
    assert.equal(input.mcp.session_id, 'sess-1');
    assert.equal(input.identity.team, 'payments');
    assert.deepEqual(input.parsed_path, ['mcp']);
    assert.equal(sink.records.length, 1);
    const rec = sink.records[0]!;
    assert.equal(rec.decision_id, id);
    assert.equal(rec.result.allow, true);
    assert.deepEqual(rec.bundles, { tollgate: { revision: 'rev-7' } });
    assert.equal(rec.input?.request.headers.authorization, undefined, 'the caller token must never be logged');
    assert.ok(!JSON.stringify(rec).includes('Bearer good'), 'the token appears nowhere in the record');
    assert.equal(input.request.headers.authorization, undefined, 'policies get the verified identity, not the raw token');
  });

  it('injects the configured upstream credential instead of passing the token through', async () => {
    const { authz } = setup({}, { upstreamAuthorization: 'Bearer upstream-secret' });
    const out = await authz.check(request(call('search_docs')));
    assert.ok(out.allow);
    assert.equal(out.headers.authorization, 'Bearer upstream-secret');
    assert.deepEqual(out.removeHeaders, []);
  });

  it('denies with a JSON-RPC error carrying the id, the reasons and the decision id', async () => {
    const { authz, sink } = setup();
    const out = await authz.check(request(call('delete_records', 'req-42')));
    assert.ok(!out.allow);
    assert.equal(out.status, 200);
    const body = JSON.parse(out.body);
    assert.equal(body.id, 'req-42');
    assert.equal(body.error.code, -32003);
    assert.match(body.error.message, /tool delete_records is not allowed for team payments/);
    assert.equal(body.error.data.decision_id, out.headers['x-tollgate-decision-id']);
    assert.deepEqual(body.error.data.reasons, ['tool delete_records is not allowed for team payments']);
    assert.equal(sink.records[0]!.result.allow, false);
    assert.equal(sink.records[0]!.mcp.tool, 'delete_records');
  });

  it('judges a batch element by element and refuses it whole if one element is denied', async () => {
    const { authz, sink } = setup();
    const out = await authz.check(request([call('search_docs', 1), call('delete_records', 2)]));
    assert.ok(!out.allow);
    const body = JSON.parse(out.body) as Array<{ id: number; error: { code: number } }>;
    assert.deepEqual(body.map((e) => [e.id, e.error.code]), [[1, -32007], [2, -32003]]);
    assert.equal(sink.records.length, 2);
  });

  it('answers 401 with a Bearer challenge pointing at the resource metadata', async () => {
    const { authz, sink } = setup();
    for (const [headers, failure] of [[{}, 'missing_token'], [{ authorization: 'Bearer expired' }, 'expired'], [{ authorization: 'Bearer forged' }, 'bad_signature'], [{ authorization: 'Basic abc' }, 'malformed_token']] as const) {
      const out = await authz.check(request(call('search_docs'), headers));
      assert.ok(!out.allow);
      assert.equal(out.status, 401);
      assert.match(out.headers['www-authenticate']!, /^Bearer resource_metadata="http:\/\/127\.0\.0\.1:10000\/\.well-known\/oauth-protected-resource\/mcp"/);
      assert.equal(JSON.parse(out.body).error.data.auth_failure, failure);
    }
    assert.equal(sink.records.length, 4);
    assert.ok(sink.records.every((r) => r.result.http_status === 401));
  });

  it('refuses malformed, oversized and truncated bodies before policy, and records them', async () => {
    const { authz, sink, policy } = setup();
    const bad = await authz.check(request('{"jsonrpc":'));
    assert.ok(!bad.allow && bad.status === 400 && JSON.parse(bad.body).error.code === -32700);
    const big = await authz.check(request({ jsonrpc: '2.0', id: 1, method: 'x', params: { pad: 'y'.repeat(5000) } }));
    assert.ok(!big.allow && big.status === 413 && JSON.parse(big.body).error.code === -32005);
    const cut = await authz.check({ ...request(call('search_docs')), truncated: true });
    assert.ok(!cut.allow && cut.status === 413);
    assert.equal(policy.inputs.length, 0);
    assert.equal(sink.records.length, 3);
  });

  it('fails closed when no policy is loaded', async () => {
    const { authz } = setup({ policy: new PolicyHolder() });
    const out = await authz.check(request(call('search_docs')));
    assert.ok(!out.allow && out.status === 503);
    assert.match(JSON.parse(out.body).error.message, /no policy is loaded/);
  });

  it('fails closed when the policy throws', async () => {
    const holder = new PolicyHolder();
    holder.swap({ revision: 'x', evaluate: () => { throw new Error('wasm trap'); } });
    const { authz } = setup({ policy: holder });
    const out = await authz.check(request(call('search_docs')));
    assert.ok(!out.allow && out.status === 503);
  });

  it('judges GET and DELETE transport requests with method null', async () => {
    const { authz, policy } = setup();
    const out = await authz.check(request('', { authorization: 'Bearer good' }, 'GET'));
    assert.ok(out.allow);
    assert.equal(policy.inputs[0]!.mcp.kind, 'transport');
    assert.equal(policy.inputs[0]!.mcp.method, null);
  });

  it('refuses HTTP methods outside the transport', async () => {
    const { authz } = setup();
    const out = await authz.check(request('', {}, 'PUT'));
    assert.ok(!out.allow && out.status === 405);
  });

  it('denies a call whose budget is exhausted, naming the budget, limit and reset', async () => {
    const entry = { name: 'payments-daily', scope: { team: 'payments' }, limit: 100, used: 100, remaining: 0, window: 'day', resets_at: '2026-11-24T00:00:00Z', action: 'deny' as const };
    const gate: BudgetGate = { check: () => ({ entries: [entry], exhausted: entry }), charge: () => undefined, close: async () => undefined };
    const { authz, policy } = setup({ budget: gate });
    const out = await authz.check(request(call('search_docs')));
    assert.ok(!out.allow);
    const err = JSON.parse(out.body).error;
    assert.equal(err.code, -32004);
    assert.match(err.message, /budget "payments-daily" is exhausted: 100 of 100 tokens used this day; it resets at 2026-11-24T00:00:00Z/);
    assert.equal(policy.inputs.length, 0);
  });
});

describe('Authorizer.check when the decision log fails', () => {
  it('refuses the call (503) rather than answer without a record, and does not throw', async () => {
    const broken: DecisionSink = { append() { throw new Error('ENOSPC: no space left on device'); }, close: async () => undefined };
    const { authz } = setup({ sink: broken });
    const out = await authz.check(request(call('search_docs')));
    assert.ok(!out.allow);
    assert.equal(out.status, 503);
    assert.match(JSON.parse(out.body).error.message, /ENOSPC/);
    assert.match(JSON.parse(out.body).error.message, /could not be recorded/, 'the client is told no log holds this decision id');
  });
});

describe('Authorizer.check request time', () => {
  it('gives the policy epoch nanoseconds from the clock, as documented', async () => {
    const { authz, policy } = setup();
    await authz.check(request(call('search_docs')));
    assert.equal(policy.inputs[0]!.request.time_ns, Date.parse('2026-11-23T10:00:00Z') * 1_000_000);
  });
});
