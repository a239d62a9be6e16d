import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { policyListFilter } from '../../../src/authz/list-policy.js';
import type { PendingCall } from '../../../src/authz/pending.js';
import { loadPolicyFromDir, type WasmPolicy } from '../../../src/policy/engine.js';
import { PolicyHolder } from '../../../src/policy/holder.js';
import { listingRules } from '../../../src/policy/listing-rules.js';
import { toolPath } from '../../../src/util/tools.js';
import { cleanupDirs, mcpInput, person, policyDir, toolCall } from './fixtures.js';

/** The example: a user's own policy, written without knowing about listings. */
const USER_POLICY = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/listing/user.rego'), 'utf8');

function parse(dir: string, file: string): unknown {
  return JSON.parse(execFileSync(toolPath('opa'), ['parse', '--format', 'json', '--json-include', 'locations', join(dir, file)], { encoding: 'utf8' }));
}

function variantsFor(rego: string): ReturnType<typeof listingRules> {
  const dir = policyDir({ 'p.rego': rego });
  return listingRules([{ file: 'p.rego', ast: parse(dir, 'p.rego') }]);
}

function listed(policy: WasmPolicy, tool: string, team: string): boolean {
  const holder = new PolicyHolder();
  holder.swap(policy);
  const call: PendingCall = {
    decisionId: 'd', subject: { team, agent: null, sub: 's', server: 'demo', tool: null }, method: 'tools/list', methods: ['tools/list'],
    tool: null, server: 'demo', requestTokens: 0, createdAt: Date.now(), listInput: mcpInput('tools/list', person(team)),
  };
  return policyListFilter(holder)(call, { kind: 'tool', name: tool, raw: { name: tool } });
}

describe('listing rules: a tool is listed when some arguments could unlock it', function () {
  this.timeout(60_000);
  after(cleanupDirs);

  it('the issue\'s policy lists add for the team that may call it, and still judges calls by their arguments', async () => {
    const policy = await loadPolicyFromDir(policyDir({ 'user.rego': USER_POLICY }));
    assert.equal(listed(policy, 'add', 'math'), true, 'math may call add (with a < 1000), so add is listed');
    assert.equal(listed(policy, 'add', 'art'), false, 'no arguments unlock add for another team');
    assert.equal(listed(policy, 'sub', 'math'), false);
    assert.equal(policy.evaluate(toolCall('add', { a: 5 }, person('math'))).allow, true);
    assert.equal(policy.evaluate(toolCall('add', { a: 5000 }, person('math'))).allow, false, 'the real call is judged on its arguments');
    assert.equal(policy.evaluate(toolCall('add', {}, person('math'))).allow, false, 'a call without arguments is not a listing');
  });

  it('drops what reads the arguments, through aliases, imports and the variables they bind, and keeps the rest', () => {
    const out = variantsFor(`package tollgate.authz

import input.mcp.arguments as args
import rego.v1

mcp := input.mcp

allow if {
	limit := data.limits[input.mcp.tool]
	input.identity.team == "math"
	some k in object.keys(mcp.arguments)
	k != "force"
	count(object.get(input.mcp, "arguments", {})) < limit
	args.a < 10
}
`);
    assert.equal(out.variants.length, 1);
    assert.deepEqual(out.variants[0]!.dropped, ['some k in object.keys(mcp.arguments)', 'k != "force"', 'count(object.get(input.mcp, "arguments", {})) < limit', 'args.a < 10']);
    assert.match(out.modules[0]!, /allow if \{\n\tinput\.mcp\.listing == true\n\tlimit := data\.limits\[input\.mcp\.tool\]\n\tinput\.identity\.team == "math"\n\}/);
    assert.match(out.modules[0]!, /^package tollgate\.authz\n\nimport rego\.v1\nimport input\.mcp\.arguments as args\n/);
  });

  it('leaves alone rules that handle listings themselves, that read no arguments, and non-granting rules', () => {
    const out = variantsFor(`package tollgate.authz

import rego.v1

allow if {
	not input.mcp.listing
	input.mcp.arguments.a < 5
}

allow if input.identity.team == "ops"

deny contains "too big" if input.mcp.arguments.a > 5

default allow := false
`);
    assert.deepEqual(out.variants, []);
    assert.deepEqual(out.modules, []);
  });

  it('a rule that only checks arguments lists the tool to everyone the rest of the policy admits', async () => {
    const policy = await loadPolicyFromDir(policyDir({ 'p.rego': `package tollgate.authz

import rego.v1

allow if input.mcp.arguments.dry_run == true
` }));
    assert.equal(listed(policy, 'anything', 'any'), true);
    assert.equal(policy.evaluate(toolCall('anything', { dry_run: false }, person('any'))).allow, false);
  });

  it('a policy whose generated rules would not compile fails the build with the user\'s file named', async () => {
    // Sanity: the generated module goes through the same opa build as the user's.
    const dir = policyDir({ 'user.rego': USER_POLICY });
    writeFileSync(join(dir, 'broken.rego'), 'package tollgate.authz\n\nallow if {\n');
    await assert.rejects(loadPolicyFromDir(dir), /broken\.rego/);
  });
});
