import { strict as assert } from 'node:assert';
import { Authorizer, defaultMasker } from '../../../src/authz/check.js';
import type { Identity, TokenVerifier } from '../../../src/identity/types.js';
import { PolicyHolder } from '../../../src/policy/holder.js';
import type { Decision, PolicyEvaluator, PolicyInput } from '../../../src/contract/policy.js';
import { buildCallInput, CallRefusedError, identityFromSpec, jsonRpcBody, requestView, type CallSpec } from '../../../src/toolkit/call-input.js';
import { countValue } from '../../../src/budget/tokens.js';
import { toRequestView, type CheckRequestMsg } from '../../../src/authz/grpc-check.js';
import type { HttpRequestView } from '../../../src/authz/view.js';

const NOW = BigInt(Date.parse('2026-11-23T10:00:00Z')) * 1_000_000n;

/** Captures the input authz builds, and allows. */
class Capture implements PolicyEvaluator {
  readonly revision = 'capture';
  inputs: PolicyInput[] = [];
  evaluate(input: PolicyInput): Decision {
    this.inputs.push(input);
    return { allow: true, reasons: [], headers: {}, httpStatus: null, mask: [], cost: null };
  }
}

/**
 * The CheckRequest Envoy sends for the request a scenario describes (as @grpc/proto-loader
 * decodes it), so authz's side of the comparison starts where production starts: toRequestView.
 */
function asCheckRequest(v: HttpRequestView): CheckRequestMsg {
  const [address, port] = v.source.address.split(':');
  const socket = { address: { socketAddress: { address: address!, portValue: Number(port ?? 0) } } };
  return {
    attributes: {
      source: socket, destination: socket,
      request: { http: { id: v.id, method: v.method, headers: v.headers, path: v.path, host: v.host, scheme: v.scheme, protocol: v.protocol, rawBody: v.body, size: v.body.length } },
      contextExtensions: v.context,
    },
  };
}

/** What the real Authorizer gives the policy for the same HTTP request, arriving as a CheckRequest. */
async function throughAuthz(spec: CallSpec): Promise<PolicyInput> {
  const identity = identityFromSpec(spec.identity, spec.nowNs) as Identity;
  const verifier: TokenVerifier = { verify: async (t) => { if (t !== 'scenario-token') throw new Error('unexpected token'); return identity; } };
  const policy = new Capture();
  const holder = new PolicyHolder();
  holder.swap(policy);
  const authz = new Authorizer({
    settings: {
      instanceId: 't', version: '0', defaultScope: { server: 'x', namespace: 'y' }, resourceMetadataUrl: 'http://m',
      limits: { maxBytes: 1 << 20, maxDepth: 64, maxBatch: 64 }, denyStatus: 200, upstreamAuthorization: null, inputMode: spec.mode,
    },
    verifier, policy: holder, budget: null, sink: null, pending: null, annotations: () => spec.annotations, countTokens: null,
    mask: defaultMasker, policyMask: null, clock: () => 0,
  });
  const body = jsonRpcBody(spec.request);
  const view = toRequestView(asCheckRequest(requestView({ ...spec, request: { ...spec.request, headers: { ...spec.request.headers, authorization: 'Bearer scenario-token' } } }, Buffer.from(body ? JSON.stringify(body) : ''))));
  const out = await authz.check(view);
  assert.ok(out.allow, JSON.stringify(out));
  assert.equal(policy.inputs.length, 1);
  return policy.inputs[0]!;
}

/** time_ns is the moment of the call, which differs between the two runs by construction. */
const timeless = (i: PolicyInput): PolicyInput => ({ ...i, request: { ...i.request, time_ns: 0 } });

const base: CallSpec = {
  server: 'demo', namespace: 'default', identity: { sub: 'alice', team: 'payments', groups: ['dba'], agent: 'claude-code', scopes: ['mcp:tools'] },
  request: { tool: 'search_docs', arguments: { query: 'refunds', limit: 3 } }, budget: null, annotations: { readOnlyHint: true }, nowNs: NOW, mode: 'tollgate',
};

describe('scenario inputs are built by the production input builders', () => {
  it('gives the policy exactly what authz gives it (tollgate mode)', async () => {
    const mine = buildCallInput(base);
    assert.deepEqual(timeless(mine), timeless(await throughAuthz(base)));
    assert.equal(mine.mcp.tool, 'search_docs');
    assert.deepEqual(mine.mcp.arguments, { query: 'refunds', limit: 3 });
    assert.deepEqual(mine.mcp.annotations, { readOnlyHint: true });
    assert.equal(mine.identity.team, 'payments');
    assert.deepEqual(mine.parsed_body, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'search_docs', arguments: { query: 'refunds', limit: 3 } } });
    assert.equal(mine.request.time_ns, Number(NOW));
  });

  it('gives the policy exactly what authz gives it (envoy mode: raw headers and body)', async () => {
    const spec: CallSpec = { ...base, mode: 'envoy', request: { ...base.request, headers: { authorization: 'Bearer scenario-token' } } };
    const mine = buildCallInput(spec);
    assert.deepEqual(timeless(mine), timeless(await throughAuthz(spec)));
    const http = (mine.attributes.request as { http: { rawBody?: string; headers: Record<string, string> } }).http;
    assert.equal(http.headers.authorization, 'Bearer scenario-token');
    // As Envoy packs it (pack_as_bytes) and opa-envoy-plugin writes bytes: base64.
    assert.deepEqual(JSON.parse(Buffer.from(http.rawBody!, 'base64').toString('utf8')), mine.parsed_body);
  });

  it('builds notifications, other methods and transport requests', async () => {
    const note = buildCallInput({ ...base, request: { method: 'notifications/initialized' } });
    assert.equal(note.mcp.kind, 'notification');
    assert.equal(note.mcp.id, null);
    const read = buildCallInput({ ...base, request: { resource: 'file:///a.txt', id: 'r-1' } });
    assert.equal(read.mcp.method, 'resources/read');
    assert.equal(read.mcp.resource, 'file:///a.txt');
    assert.equal(read.mcp.id, 'r-1');
    const get = buildCallInput({ ...base, request: { transport: 'GET' } });
    assert.deepEqual([get.mcp.method, get.mcp.kind, get.request.method, get.parsed_body], [null, 'transport', 'GET', null]);
    assert.deepEqual(timeless(get), timeless(await throughAuthz({ ...base, request: { transport: 'GET' } })));
    const anon = buildCallInput({ ...base, identity: { authenticated: false } });
    assert.equal(anon.identity.authenticated, false);
    assert.equal(anon.identity.sub, null);
  });

  it('counts argument tokens with the real tokenizer when budgets apply, and fills budget defaults', () => {
    const i = buildCallInput({ ...base, budget: { budgets: [{ name: 'd', scope: {}, limit: 10, used: 1, remaining: 9, window: 'day', resets_at: null, action: 'deny' }], estimatedTokens: null } });
    assert.equal(i.budget.estimated_tokens, countValue({ query: 'refunds', limit: 3 }));
    assert.ok(i.budget.estimated_tokens > 0);
    assert.equal(i.budget.budgets[0]!.resets_at, '2026-11-24T00:00:00.000Z');
    assert.equal(buildCallInput(base).budget.estimated_tokens, 0);
  });

  it('refuses what the mesh refuses before policy', () => {
    assert.throws(() => buildCallInput({ ...base, request: { method: 'tools/call', params: { arguments: {} } } }), (e: Error) => e instanceof CallRefusedError && /tools\/call needs params.name/.test(e.message));
  });
});
