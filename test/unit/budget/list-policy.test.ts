import { strict as assert } from 'node:assert';
import type { ListedItem } from '../../../src/authz/extproc.js';
import { policyListFilter } from '../../../src/authz/list-policy.js';
import type { PendingCall } from '../../../src/authz/pending.js';
import { PolicyHolder } from '../../../src/policy/holder.js';
import type { Decision, PolicyEvaluator, PolicyInput } from '../../../src/contract/policy.js';
import { mcpInput, person } from '../policy/fixtures.js';

const decision = (allow: boolean): Decision => ({ allow, reasons: [], headers: {}, httpStatus: null, mask: [], cost: null });

/** A policy that records what it was asked and answers with `rule`. */
class FakePolicy implements PolicyEvaluator {
  readonly revision = 'fake-1';
  readonly asked: PolicyInput[] = [];
  constructor(private readonly rule: (input: PolicyInput) => boolean) {}
  evaluate(input: PolicyInput): Decision {
    this.asked.push(input);
    return decision(this.rule(input));
  }
}

const item = (kind: ListedItem['kind'], name: string, extra: Partial<ListedItem> = {}): ListedItem => ({ kind, name, raw: { name }, ...extra });

function listCall(method: string, withInput = true): PendingCall {
  const call: PendingCall = {
    decisionId: 'd-1', subject: { team: 'support', agent: null, sub: 'sam', server: 'demo', tool: null }, method, methods: [method],
    tool: null, server: 'demo', requestTokens: 0, createdAt: Date.now(),
  };
  if (withInput) call.listInput = mcpInput(method, person('support', [], 'sam'));
  return call;
}

describe('policyListFilter', () => {
  it('asks about a listed tool as a tools/call without arguments, flagged as a listing, with the server\'s annotations', () => {
    const policy = new FakePolicy((i) => i.mcp.tool !== 'run_sql');
    const holder = new PolicyHolder();
    holder.swap(policy);
    const keep = policyListFilter(holder);
    const call = listCall('tools/list');
    const before = JSON.stringify(call.listInput);
    assert.equal(keep(call, item('tool', 'search_docs', { annotations: { readOnlyHint: true } })), true);
    assert.equal(keep(call, item('tool', 'run_sql')), false);
    const [first, second] = policy.asked;
    assert.deepEqual(
      { ...first!.mcp },
      { ...call.listInput!.mcp, method: 'tools/call', kind: 'request', tool: 'search_docs', arguments: null, prompt: null, resource: null, params: { name: 'search_docs' }, annotations: { readOnlyHint: true }, listing: true },
    );
    assert.equal(second!.mcp.annotations, null);
    // Everything but input.mcp is the list request's own input: identity, budgets, request.
    assert.equal(first!.identity, call.listInput!.identity);
    assert.equal(first!.request, call.listInput!.request);
    assert.equal(JSON.stringify(call.listInput), before, 'the kept input is not modified');
  });

  it('asks about prompts as prompts/get and about resources (and templates) as resources/read', () => {
    const policy = new FakePolicy((i) => i.mcp.prompt === 'summary' || (i.mcp.resource ?? '').startsWith('file:///public/'));
    const holder = new PolicyHolder();
    holder.swap(policy);
    const keep = policyListFilter(holder);
    assert.equal(keep(listCall('prompts/list'), item('prompt', 'summary')), true);
    assert.equal(keep(listCall('prompts/list'), item('prompt', 'secrets')), false);
    assert.equal(keep(listCall('resources/list'), item('resource', 'readme', { uri: 'file:///public/readme.md' })), true);
    assert.equal(keep(listCall('resources/list'), item('resource', 'payroll', { uri: 'file:///hr/payroll.csv' })), false);
    assert.equal(keep(listCall('resources/templates/list'), item('resourceTemplate', 'docs', { uri: 'file:///public/{path}' })), true);
    const mcp = policy.asked.map((i) => [i.mcp.method, i.mcp.prompt, i.mcp.resource, i.mcp.tool, JSON.stringify(i.mcp.params), i.mcp.listing]);
    assert.deepEqual(mcp, [
      ['prompts/get', 'summary', null, null, '{"name":"summary"}', true],
      ['prompts/get', 'secrets', null, null, '{"name":"secrets"}', true],
      ['resources/read', null, 'file:///public/readme.md', null, '{"uri":"file:///public/readme.md"}', true],
      ['resources/read', null, 'file:///hr/payroll.csv', null, '{"uri":"file:///hr/payroll.csv"}', true],
      ['resources/read', null, 'file:///public/{path}', null, '{"uri":"file:///public/{path}"}', true],
    ]);
  });

  it('fails closed: hides items when there is no policy, no input of the list request, nothing to judge, or evaluation throws', () => {
    const empty = new PolicyHolder();
    assert.equal(policyListFilter(empty)(listCall('tools/list'), item('tool', 'search_docs')), false, 'no policy loaded');

    const holder = new PolicyHolder();
    const allowAll = new FakePolicy(() => true);
    holder.swap(allowAll);
    const keep = policyListFilter(holder);
    assert.equal(keep(listCall('tools/list', false), item('tool', 'search_docs')), false, 'no listInput');
    assert.equal(keep(listCall('tools/list'), item('tool', '')), false, 'a tool without a name');
    assert.equal(keep(listCall('resources/list'), item('resource', 'x')), false, 'a resource without a uri');
    assert.equal(allowAll.asked.length, 0, 'none of these reached the policy');

    holder.swap({ revision: 'broken', evaluate: () => { throw new Error('boom'); } });
    assert.equal(keep(listCall('tools/list'), item('tool', 'search_docs')), false, 'evaluation threw');
  });

  it('follows the policy in force: a swap applies to the next listing', () => {
    const holder = new PolicyHolder();
    holder.swap(new FakePolicy(() => false));
    const keep = policyListFilter(holder);
    assert.equal(keep(listCall('tools/list'), item('tool', 'search_docs')), false);
    holder.swap(new FakePolicy(() => true));
    assert.equal(keep(listCall('tools/list'), item('tool', 'search_docs')), true);
  });
});
