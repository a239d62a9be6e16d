import { strict as assert } from 'node:assert';
import type { ListedItem } from '../../../src/authz/extproc.js';
import { policyListFilter } from '../../../src/authz/list-policy.js';
import type { PendingCall } from '../../../src/authz/pending.js';
import { PinStore } from '../../../src/pins/store.js';
import { PolicyHolder } from '../../../src/policy/holder.js';
import type { Decision, PolicyEvaluator, PolicyInput } from '../../../src/contract/policy.js';
import { mcpInput, person } from '../policy/fixtures.js';

class Recorder implements PolicyEvaluator {
  readonly revision = 'rec-1';
  readonly asked: PolicyInput[] = [];
  evaluate(input: PolicyInput): Decision {
    this.asked.push(input);
    return { allow: true, reasons: [], headers: {}, httpStatus: null, mask: [], cost: null };
  }
}

const call = (method: string): PendingCall => ({
  decisionId: 'd', subject: { team: 'payments', agent: null, sub: 'alice', server: 'demo', tool: null }, method, methods: [method],
  tool: null, server: 'demo', requestTokens: 0, createdAt: Date.now(), listInput: mcpInput(method, person('payments')),
});

describe('list filtering with tool pinning on', () => {
  it('gives the policy the pin status of each listed tool, and scanner findings of prompts and resources', () => {
    const policy = new Recorder();
    const holder = new PolicyHolder();
    holder.swap(policy);
    const store = new PinStore();
    store.observe('demo', [{ name: 'search_docs', description: 'Search.' }]);
    const keep = policyListFilter(holder, store.lookup);
    keep(call('tools/list'), { kind: 'tool', name: 'search_docs', raw: { name: 'search_docs' } });
    const prompt: ListedItem = { kind: 'prompt', name: 'summarise', raw: { name: 'summarise', description: 'Summarise.\u202e hidden' } };
    keep(call('prompts/list'), prompt);
    const [tool, p] = policy.asked;
    assert.equal(tool!.mcp.pin!.status, 'new');
    assert.match(tool!.mcp.pin!.sha256!, /^[0-9a-f]{64}$/);
    assert.deepEqual(p!.mcp.findings!.map((f) => f.kind), ['bidi_control']);
  });

  it('leaves input.mcp without pin or findings when pinning is off', () => {
    const policy = new Recorder();
    const holder = new PolicyHolder();
    holder.swap(policy);
    policyListFilter(holder)(call('tools/list'), { kind: 'tool', name: 'x', raw: { name: 'x' } });
    assert.equal('pin' in policy.asked[0]!.mcp, false);
    assert.equal('findings' in policy.asked[0]!.mcp, false);
  });
});
