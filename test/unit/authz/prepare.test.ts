import { strict as assert } from 'node:assert';
import { prepareCall, type PrepareLookups } from '../../../src/authz/prepare.js';
import type { HttpRequestView } from '../../../src/authz/view.js';
import type { ChargeSubject, PriorClaim } from '../../../src/budget/types.js';
import type { Identity } from '../../../src/identity/types.js';
import { parseMcpBody } from '../../../src/mcp/jsonrpc.js';

const alice: Identity = {
  sub: 'alice', iss: 'https://issuer', aud: ['r'], team: 'payments', groups: [], roles: [], tenant: null, agent: 'bot', scopes: [], delegation: [], expiresAt: 2e9, claims: { sub: 'alice' },
};
const scope = { server: 'billing', namespace: 'prod' };
const call = (id: number, tool: string, args: unknown = { q: 'x' }) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: tool, arguments: args } });

function view(body: unknown, headers: Record<string, string> = {}): HttpRequestView {
  return {
    id: 'r', method: 'POST', path: '/mcp', query: '', host: 'h', scheme: 'http', protocol: 'HTTP/1.1', headers, body: Buffer.from(JSON.stringify(body)),
    truncated: false, context: {}, source: { address: '', principal: '' }, destination: { address: '', principal: '' }, traceId: null,
  };
}

function prepare(body: unknown, over: Partial<PrepareLookups> = {}, headers: Record<string, string> = {}) {
  const weighed: Array<{ subject: ChargeSubject; args: unknown; prior: readonly PriorClaim[] }> = [];
  const parsed = parseMcpBody(Buffer.from(JSON.stringify(body)));
  assert.ok(parsed.ok);
  const out = prepareCall({ req: view(body, headers), identity: alice, scope, parsed, nowMs: 1_700_000_000_000 }, {
    weigh: (subject, args, prior) => { weighed.push({ subject, args, prior }); return { tokens: 10, measured: null, budget: { entries: [], exhausted: null } }; },
    annotations: null, pins: null, ...over,
  });
  return { out, weighed };
}

describe('prepare input (authz/prepare.ts)', () => {
  it('weighs each batch element knowing what the earlier ones claim, and gives each its own input', () => {
    const { out, weighed } = prepare([call(1, 'a'), call(2, 'b')]);
    assert.deepEqual(weighed.map((w) => w.prior.map((p) => [p.subject.tool, p.tokens])), [[], [['a', 10]]]);
    assert.deepEqual(weighed[1]!.subject, { team: 'payments', agent: 'bot', sub: 'alice', server: 'billing', tool: 'b' });
    assert.deepEqual(out.map((p) => [p.input!.mcp.tool, p.input!.mcp.batch, p.input!.budget.estimated_tokens]), [['a', { index: 0, size: 2 }, 10], ['b', { index: 1, size: 2 }, 10]]);
    assert.deepEqual(out[1]!.input!.parsed_body, call(2, 'b'), 'an element sees itself, not the whole batch');
    assert.equal(out[0]!.input!.request.time_ns, 1_700_000_000_000 * 1_000_000, 'epoch nanoseconds');
  });

  it('leaves a message the mesh refuses before policy without input and unweighed', () => {
    const { out, weighed } = prepare({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { arguments: {} } });
    assert.ok(out[0]!.facts?.invalid);
    assert.equal(out[0]!.input, null);
    assert.equal(out[0]!.tokens, 0);
    assert.equal(weighed.length, 0);
  });

  it('asks for annotations and pins of tool calls only, and says where the session stands', () => {
    const asked: string[] = [];
    const look: Partial<PrepareLookups> = {
      annotations: (_s, tool) => { asked.push(`ann:${tool}`); return { readOnlyHint: true }; },
      pins: (_s, tool) => { asked.push(`pin:${tool}`); return { status: 'pinned' } as never; },
    };
    const { out } = prepare(call(1, 'search'), look, { 'mcp-session-id': 's1' });
    assert.deepEqual(asked, ['ann:search', 'pin:search']);
    assert.deepEqual(out[0]!.input!.mcp.annotations, { readOnlyHint: true });
    assert.deepEqual(out[0]!.input!.mcp.session, { id: 's1', owner: null, bound_by: null }, 'as a fresh authz sees it when Check says nothing');
    const list = prepare({ jsonrpc: '2.0', id: 2, method: 'tools/list' }, look);
    assert.equal(asked.length, 2, 'a list asks nothing');
    assert.equal('pin' in list.out[0]!.input!.mcp, false, 'input.mcp.pin only on tools/call');
  });
});
