import { strict as assert } from 'node:assert';
import { Authorizer, type CheckDeps } from '../../../src/authz/check.js';
import { PendingCalls } from '../../../src/authz/pending.js';
import type { HttpRequestView } from '../../../src/authz/view.js';
import { AuthError, type Identity, type TokenVerifier } from '../../../src/identity/types.js';
import { PolicyHolder } from '../../../src/policy/holder.js';
import type { Decision, PolicyEvaluator, PolicyInput } from '../../../src/contract/policy.js';
import type { DecisionRecordDraft, DecisionSink } from '../../../src/decisionlog/types.js';
import { SessionOwners } from '../../../src/authz/sessions.js';
import { createInputMasker } from '../../../src/decisionlog/mask.js';
import { parseBudgetConfig } from '../../../src/budget/config.js';
import { createBudgetGate } from '../../../src/budget/gate.js';
import { LocalBudgetStore } from '../../../src/budget/local-store.js';
import { countValue } from '../../../src/budget/tokens.js';
import { reasonClassOf } from '../../../src/contract/refusal.js';
import type { AuthzMetrics } from '../../../src/metrics/authz-metrics.js';
import type { CheckTracer } from '../../../src/telemetry/check-span.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const alice: Identity = {
  sub: 'alice', iss: 'https://issuer', aud: ['r'], team: 'payments', groups: [], roles: [], tenant: null, agent: 'bot', scopes: [], delegation: [], expiresAt: 2e9, claims: { sub: 'alice' },
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
    verifier, policy: holder, budget: null, sink, pending, annotations: null, countTokens: null, mask: createInputMasker(), policyMask: null, clock: () => Date.parse('2026-11-23T10:00:00Z'),
    ...over,
  };
  return { authz: new Authorizer(deps), policy, sink, pending, holder };
}

describe('Authorizer.check', () => {
  it('allows a permitted call, strips the caller token and tags the request', async () => {
    const { authz, sink, pending, policy } = setup();
    const out = await authz.check(request(call('search_docs')));
    assert.ok(out.allow);
    assert.deepEqual(out.removeHeaders, ['authorization', 'accept-encoding'], 'no caller token upstream, and no compressed answer ext_proc could not filter');
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
    assert.deepEqual(out.removeHeaders, ['accept-encoding']);
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
    // The record says what happened: the allowed element never ran.
    const [allowed, denied] = sink.records;
    assert.deepEqual({ ...allowed!.result, reasons: allowed!.result.reasons },
      { allow: false, reasons: ['not executed: another element of this batch was refused'], http_status: 200, code: -32007, error: null, outcome: 'not_executed', policy_allow: true, late_ms: null });
    assert.equal(denied!.result.outcome, 'refused');
    assert.equal(denied!.result.policy_allow, false);
  });

  it('records an allowed call as forwarded', async () => {
    const { authz, sink } = setup();
    await authz.check(request(call('search_docs')));
    assert.equal(sink.records[0]!.result.outcome, 'forwarded');
    assert.equal(sink.records[0]!.result.policy_allow, true);
  });

  it('refuses and records as not executed a Check answered after Envoy\'s deadline', async () => {
    const { authz, sink, pending } = setup();
    // Lateness is read on authz's one wall clock (deps.clock), here fixed.
    const now = Date.parse('2026-11-23T10:00:00Z');
    const out = await authz.check({ ...request(call('search_docs', 5)), deadline: now - 40 });
    assert.ok(!out.allow);
    assert.equal(out.status, 504);
    assert.equal(pending.size, 0, 'nothing for ext_proc: the call does not run');
    const r = sink.records[0]!.result;
    assert.equal(r.allow, false);
    assert.equal(r.outcome, 'not_executed');
    assert.equal(r.policy_allow, true, 'the policy allowed it; the record still says it never ran');
    assert.ok(r.late_ms! >= 40, String(r.late_ms));
    assert.match(r.reasons.join(' '), /after Envoy's ext_authz deadline/);
    // In time: forwarded.
    const ok = await authz.check({ ...request(call('search_docs')), deadline: now + 1000 });
    assert.ok(ok.allow);
    assert.equal(sink.records[1]!.result.outcome, 'forwarded');
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

  it('refuses invalid params before policy with -32602 and the configured deny status, and records why', async () => {
    const { authz, sink, policy } = setup();
    const out = await authz.check(request({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { arguments: {} } }));
    assert.ok(!out.allow);
    assert.equal(out.status, 200);
    const err = JSON.parse(out.body).error;
    assert.equal(err.code, -32602);
    const rec = sink.records[0]!;
    assert.deepEqual([rec.result.code, rec.result.outcome, rec.result.policy_allow, rec.input], [-32602, 'refused', null, null]);
    assert.equal(rec.result.error, rec.result.reasons[0]);
    assert.equal(policy.inputs.length, 0);
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

  it('refuses a method in another case rather than judge an upper-cased copy (HTTP/2 `get` with a body)', async () => {
    const { authz, sink, policy } = setup();
    for (const m of ['get', 'post', 'Delete']) {
      const out = await authz.check(request(call('delete_records'), { authorization: 'Bearer good' }, m));
      assert.ok(!out.allow && out.status === 405, m);
      assert.match(JSON.parse(out.body).error.message, /case-sensitive/);
    }
    assert.equal(policy.inputs.length, 0);
    assert.ok(sink.records.every((r) => r.result.outcome === 'refused' && r.result.http_status === 405));
  });

  it('refuses a GET or DELETE that carries a body nobody would judge', async () => {
    const { authz, policy } = setup();
    for (const m of ['GET', 'DELETE']) {
      const out = await authz.check(request(call('delete_records'), { authorization: 'Bearer good' }, m));
      assert.ok(!out.allow && out.status === 400, m);
      assert.match(JSON.parse(out.body).error.message, /must not carry a body/);
    }
    assert.equal(policy.inputs.length, 0);
  });

  describe('with a real budget gate (local store)', () => {
    let dir = '';
    const now = Date.parse('2026-11-23T10:00:00Z');
    const gateWith = (limit: number) => {
      dir = mkdtempSync(join(tmpdir(), 'tollgate-check-budget-'));
      const config = parseBudgetConfig(`budgets:\n  - { name: payments-daily, scope: { team: payments }, limit: ${limit}, window: day }\n`, 'b.yaml');
      return createBudgetGate(config, LocalBudgetStore.open(config.budgets, { dir, adminPollMs: 0 }), { clock: () => now });
    };
    afterEach(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

    it('charges the cost a policy puts on an allowed call with its arguments, and records it', async () => {
      const gate = gateWith(1000);
      const costly: PolicyEvaluator = { revision: 'rev-cost', evaluate: () => ({ allow: true, reasons: [], headers: {}, httpStatus: null, mask: [], cost: 250 }) };
      const holder = new PolicyHolder();
      holder.swap(costly);
      const { authz, sink } = setup({ budget: gate, policy: holder });
      const body = call('search_docs');
      assert.ok((await authz.check(request(body))).allow);
      const args = countValue(body.params.arguments);
      const standing = gate.check({ team: 'payments', agent: 'bot', sub: 'alice', server: 'billing', tool: 'search_docs' }, 0).entries[0]!;
      assert.equal(standing.used, args + 250);
      assert.deepEqual(sink.records[0]!.tokens, { request: args, response: null, policy_cost: 250 });
      await gate.close();
    });

    it('records a used-up warn budget on the call it let through', async () => {
      dir = mkdtempSync(join(tmpdir(), 'tollgate-check-budget-'));
      const config = parseBudgetConfig('budgets:\n  - { name: payments-soft, scope: { team: payments }, limit: 10, window: day, action: warn }\n', 'b.yaml');
      const gate = createBudgetGate(config, LocalBudgetStore.open(config.budgets, { dir, adminPollMs: 0 }), { clock: () => now });
      gate.charge({ team: 'payments', agent: 'bot', sub: 'alice', server: 'billing', tool: null }, 10);
      const { authz, sink } = setup({ budget: gate });
      assert.ok((await authz.check(request(call('search_docs')))).allow, 'warn budgets never refuse');
      assert.deepEqual(sink.records[0]!.budget, [{ name: 'payments-soft', limit: 10, used: 10, remaining: 0, warning: true }]);
      await gate.close();
    });

    it('denies a call whose budget is exhausted, naming the budget, limit and reset', async () => {
      const gate = gateWith(100);
      gate.charge({ team: 'payments', agent: 'bot', sub: 'alice', server: 'billing', tool: null }, 100);
      const { authz, policy, sink } = setup({ budget: gate });
      const out = await authz.check(request(call('search_docs')));
      assert.ok(!out.allow);
      const err = JSON.parse(out.body).error;
      assert.equal(err.code, -32004);
      assert.equal(out.status, 200, 'the configured deny status');
      const rec = sink.records[0]!.result;
      assert.deepEqual([rec.code, rec.error, rec.http_status], [-32004, null, 200], 'the reason is in reasons; error stays null');
      assert.match(err.message, /budget "payments-daily" is exhausted: 100 of 100 tokens used this day; it resets at 2026-11-24T00:00:00\.000Z/);
      assert.equal(policy.inputs.length, 0);
      await gate.close();
    });

    it('refuses a batch whose elements fit the budget one by one but not together', async () => {
      const big = (id: number) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'search_docs', arguments: { q: 'refund policy for annual plans '.repeat(4) } } });
      const each = countValue(big(1).params.arguments);
      const gate = gateWith(Math.floor(each * 2.5));
      const { authz, sink } = setup({ budget: gate });
      const three = await authz.check(request([big(3), big(4), big(5)]));
      assert.ok(!three.allow, 'the third would overshoot: each element is judged with what the earlier ones spend');
      const codes = (JSON.parse(three.body) as Array<{ id: number; error: { code: number; message: string } }>).map((e) => [e.id, e.error.code]);
      assert.deepEqual(codes, [[3, -32007], [4, -32007], [5, -32004]]);
      assert.equal(gate.check({ team: 'payments', agent: 'bot', sub: 'alice', server: 'billing', tool: 'search_docs' }, 0).entries[0]!.used, 0, 'nothing charged');
      const used = 0;
      const two = await authz.check(request([big(1), big(2)]));
      assert.ok(two.allow, 'two fit');
      assert.equal(sink.records.length - used, 5);
      await gate.close();
    });
    it('tokenizes arguments only for a caller some budget applies to', async () => {
      const gate = gateWith(1_000_000);
      const support: Identity = { ...alice, sub: 'sam', team: 'support' };
      const two: TokenVerifier = { async verify(t) { if (t === 'good') return alice; if (t === 'sam') return support; throw new AuthError('bad_signature', 'no'); } };
      const { authz, policy } = setup({ budget: gate, verifier: two });
      assert.ok((await authz.check(request(call('search_docs')))).allow);
      assert.ok((await authz.check(request(call('search_docs'), { authorization: 'Bearer sam' }))).allow);
      const [payments, other] = policy.inputs;
      assert.equal(payments!.budget.estimated_tokens, countValue(call('search_docs').params.arguments), 'the payments budget applies: counted');
      assert.equal(other!.budget.estimated_tokens, 0, 'no budget applies to team support: not tokenized');
      await gate.close();
    });
  });

  describe('sessions bound to the identity that initialized them', () => {
    const mallory: Identity = { ...alice, sub: 'mallory', team: 'support' };
    const both: TokenVerifier = { async verify(t) { if (t === 'good') return alice; if (t === 'mallory') return mallory; throw new AuthError('bad_signature', 'no'); } };

    it('refuses another identity\'s session on POST, GET and DELETE, before policy', async () => {
      const sessions = new SessionOwners();
      sessions.bind('sess-1', { iss: alice.iss, sub: 'alice', agent: 'bot' }, 'initialize', Date.parse('2026-11-23T10:00:00Z'));
      const { authz, policy, sink } = setup({ sessions, verifier: both });
      for (const [m, body] of [['POST', call('search_docs', 9)], ['GET', ''], ['DELETE', '']] as const) {
        const out = await authz.check(request(body, { authorization: 'Bearer mallory' }, m));
        assert.ok(!out.allow && out.status === 404, m);
        const err = JSON.parse(out.body).error;
        assert.equal(err.code, -32008);
        assert.match(err.message, /belongs to another identity/);
      }
      assert.equal(policy.inputs.length, 0);
      assert.ok(sink.records.every((r) => r.identity.sub === 'mallory' && r.result.code === -32008));
      // The owner carries on, and the policy sees who owns the session.
      const ok = await authz.check(request(call('search_docs')));
      assert.ok(ok.allow);
      assert.deepEqual(policy.inputs[0]!.mcp.session, { id: 'sess-1', owner: { iss: alice.iss, sub: 'alice', agent: 'bot' }, bound_by: 'initialize' });
    });

    it('binds an unknown session to the first identity allowed to use it (after a restart, another replica)', async () => {
      const sessions = new SessionOwners();
      const { authz, policy } = setup({ sessions, verifier: both });
      assert.ok((await authz.check(request(call('search_docs')))).allow);
      assert.deepEqual(policy.inputs[0]!.mcp.session, { id: 'sess-1', owner: null, bound_by: null });
      const out = await authz.check(request(call('search_docs'), { authorization: 'Bearer mallory' }));
      assert.ok(!out.allow && out.status === 404);
      // A denied request claims nothing.
      await authz.check(request(call('delete_records'), { authorization: 'Bearer mallory', 'mcp-session-id': 'sess-2' }));
      assert.ok((await authz.check(request(call('search_docs'), { authorization: 'Bearer good', 'mcp-session-id': 'sess-2' }))).allow);
      assert.equal(policy.inputs.at(-1)!.mcp.session?.bound_by, null);
    });
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

describe('Authorizer.check: cost grows linearly with a batch', () => {
  // Bytes, not time: what each element's evaluation is given (the WASM parses its input as
  // JSON) and what the log writes, summed over the batch.
  const element = (id: number) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'search_docs', arguments: { q: `${id} `.padEnd(4000, 'x') } } });
  async function bytesFor(n: number, inputMode: 'tollgate' | 'envoy'): Promise<{ input: number; log: number }> {
    const { authz, policy, sink } = setup({}, { limits: { maxBytes: 1024 * 1024, maxDepth: 16, maxBatch: 64 }, inputMode });
    const body = n === 1 ? element(0) : Array.from({ length: n }, (_, i) => element(i));
    assert.ok((await authz.check(request(body))).allow);
    assert.equal(policy.inputs.length, n);
    return {
      input: policy.inputs.reduce((sum, x) => sum + JSON.stringify(x).length, 0),
      log: sink.records.reduce((sum, r) => sum + JSON.stringify(r).length, 0),
    };
  }

  for (const mode of ['tollgate', 'envoy'] as const) {
    it(`a batch of 64 costs about 64 single calls, not 64 × the batch (${mode} input)`, async () => {
      const one = await bytesFor(1, mode);
      const many = await bytesFor(64, mode);
      // Quadratic would be ~64 × 64 / 2 = 2,048 times; linear with per-element overhead stays near 64.
      assert.ok(many.input < 64 * one.input * 1.25, `policy input: ${many.input} bytes for 64 vs ${one.input} for 1`);
      assert.ok(many.log < 64 * one.log * 1.25, `decision log: ${many.log} bytes for 64 vs ${one.log} for 1`);
      assert.ok(many.input > 64 * 4000, 'each element still carries its own arguments');
    });
  }

  it('shows each element its own parsed_body, and the envoy body string as that element', async () => {
    const { authz, policy } = setup({}, { inputMode: 'envoy' });
    await authz.check(request([call('search_docs', 1), call('search_docs', 2)]));
    assert.deepEqual(policy.inputs.map((x) => (x.parsed_body as { id: number }).id), [1, 2]);
    // The sidecar packs bodies as bytes, so the element arrives as opa-envoy-plugin shows bytes: base64.
    const http = (x: PolicyInput) => (x.attributes as { request: { http: { rawBody: string; size: number } } }).request.http;
    const own = Buffer.from(http(policy.inputs[1]!).rawBody, 'base64').toString('utf8');
    assert.deepEqual(JSON.parse(own), call('search_docs', 2));
    assert.equal(http(policy.inputs[1]!).size, Buffer.byteLength(own));
  });
});

describe('Authorizer.check: finish is the one place a decision leaves a trace', () => {
  /** Every decision counted and traced, next to the records, to compare one for one. */
  function observed() {
    const decisions: Array<{ allow: boolean; reasonClass: string; code: number | null; tool: string | null }> = [];
    const authFailures: string[] = [];
    const spans: Array<{ decisionId: string; allow: boolean; reasonClass: string }> = [];
    const metrics = {
      recordDecision: (d: (typeof decisions)[number]) => { decisions.push({ allow: d.allow, reasonClass: d.reasonClass, code: d.code, tool: d.tool }); },
      recordAuthFailure: (f: string) => { authFailures.push(f); },
      recordBudgetStanding: () => {},
    } as unknown as AuthzMetrics;
    const tracer = { enabled: true, record: (_c: unknown, f: { decisionId: string; allow: boolean; reasonClass: string }) => { spans.push({ decisionId: f.decisionId, allow: f.allow, reasonClass: f.reasonClass }); } } as unknown as CheckTracer;
    return { decisions, authFailures, spans, metrics, tracer };
  }

  it('records, counts and traces every decision exactly once, on every path', async () => {
    const o = observed();
    const { authz, sink } = setup({ metrics: o.metrics, tracer: o.tracer });
    const now = Date.parse('2026-11-23T10:00:00Z');
    await authz.check(request(call('search_docs')));
    await authz.check(request(call('drop_tables')));
    await authz.check(request([call('search_docs', 1), call('drop_tables', 2)]));
    await authz.check(request(call('search_docs'), { authorization: 'Bearer expired' }));
    await authz.check(request('{}', {}, 'GET'));
    await authz.check({ ...request(call('search_docs')), deadline: now - 40 });
    assert.equal(sink.records.length, 7, 'one record per message: 1 + 1 + 2 + 1 + 1 + 1');
    assert.equal(o.decisions.length, sink.records.length, 'one count per record');
    assert.deepEqual(o.spans.map((s) => s.decisionId), sink.records.map((r) => r.decision_id), 'one span per record, in order');
    assert.deepEqual(o.decisions.map((d) => [d.allow, d.reasonClass, d.code]), sink.records.map((r) => [r.result.allow, reasonClassOf(r.result.code), r.result.code]));
    assert.deepEqual(o.decisions.map((d) => d.reasonClass), ['policy', 'policy', 'policy', 'policy', 'auth', 'bad_request', 'unavailable']);
    assert.deepEqual(o.authFailures, ['expired']);
  });

  it('still counts and traces a refusal the decision log could not take', async () => {
    const o = observed();
    const broken: DecisionSink = { append() { throw new Error('disk full'); }, async close() {} };
    const { authz } = setup({ metrics: o.metrics, tracer: o.tracer, sink: broken });
    const out = await authz.check(request(call('search_docs')));
    assert.ok(!out.allow);
    assert.equal(out.status, 503);
    assert.match(out.body, /could not be recorded/);
    assert.deepEqual(o.decisions.map((d) => [d.allow, d.reasonClass]), [[false, 'unavailable']], 'the allow that could not be recorded is never counted');
    assert.equal(o.spans.length, 1);
  });

  it('asks the holder for the policy once per Check, and masks with that same policy', async () => {
    const { authz, holder, sink } = setup();
    let gets = 0;
    const get = holder.get.bind(holder);
    holder.get = () => { gets++; return get(); };
    const masked: PolicyInput[] = [];
    const masking = Object.assign(new ToolListPolicy(), { evaluateMask: (input: PolicyInput) => { masked.push(input); return ['/input/mcp/arguments/q']; } });
    holder.swap(masking);
    await authz.check(request([call('search_docs', 1), call('search_docs', 2)]));
    assert.equal(gets, 1);
    assert.equal(masked.length, 2, 'each element\'s record is masked by the policy that decided it');
    assert.deepEqual(sink.records.map((r) => r.erased.includes('/input/mcp/arguments/q')), [true, true]);
  });
});
