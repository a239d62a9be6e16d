import { strict as assert } from 'node:assert';
import { parseScenarioText } from '../../../src/toolkit/scenario-parse.js';
import { formatScenarioProblem, ScenarioFormatError, type ScenarioProblem } from '../../../src/toolkit/scenario-types.js';

function problemsOf(text: string): ScenarioProblem[] {
  try {
    parseScenarioText(text, 's.yaml');
  } catch (e) {
    assert.ok(e instanceof ScenarioFormatError, String(e));
    return e.problems;
  }
  assert.fail('expected the file to be refused');
}

describe('scenario files: parsing', () => {
  it('applies defaults, merges identities field by field and infers methods', () => {
    const f = parseScenarioText(`
defaults:
  server: billing
  namespace: payments
  identity: {sub: alice, team: payments, groups: [dba]}
  time: 2026-11-23T10:00:00Z
cases:
  - name: inherits everything
    request: {tool: search_docs, arguments: {query: x}}
    expect: {allow: true}
  - name: overrides the team only
    identity: {team: support, scopes: "mcp:tools mcp:read"}
    server: other
    request: {resource: "file:///a"}
    expect: {allow: false, reasons_contain: not allowed}
  - name: anonymous drops the defaults
    identity: {authenticated: false}
    request: {transport: GET}
    time: 2027-01-01T00:00:00Z
    expect: {status: null, headers: {x-a: "1", x-b: null}, mask: [/input/mcp/arguments/p], cost: 3}
`, 's.yaml');
    assert.equal(f.entrypoint, 'tollgate');
    const [a, b, c] = f.cases;
    assert.deepEqual(a!.identity, { sub: 'alice', team: 'payments', groups: ['dba'] });
    assert.equal(a!.server, 'billing');
    assert.equal(a!.namespace, 'payments');
    assert.equal(a!.timeNs, BigInt(Date.parse('2026-11-23T10:00:00Z')) * 1_000_000n);
    assert.equal(a!.line, 8);
    assert.deepEqual(b!.identity, { sub: 'alice', team: 'support', groups: ['dba'], scopes: ['mcp:tools', 'mcp:read'] });
    assert.equal(b!.server, 'other');
    assert.deepEqual(b!.expect, { allow: false, reasonsContain: ['not allowed'] });
    assert.deepEqual(c!.identity, { authenticated: false });
    assert.deepEqual(c!.request, { transport: 'GET' });
    assert.equal(c!.timeNs, BigInt(Date.parse('2027-01-01T00:00:00Z')) * 1_000_000n);
    assert.deepEqual(c!.expect, { status: null, headers: { 'x-a': '1', 'x-b': null }, mask: ['/input/mcp/arguments/p'], cost: 3 });
  });

  it('fills budget entries as input.budget.budgets has them', () => {
    const f = parseScenarioText(`
entrypoint: envoy
cases:
  - name: b
    request: {method: tools/list}
    budget:
      budgets:
        - {name: team-day, limit: 100, used: 30}
        - {name: agent-month, scope: {agent: bot}, limit: 10, used: 10, remaining: 0, window: month, action: warn, resets_at: "2026-12-01T00:00:00.000Z"}
      estimated_tokens: 12
    expect: {allow: true}
`, 'b.yaml');
    assert.equal(f.entrypoint, 'envoy');
    assert.deepEqual(f.cases[0]!.budget, {
      estimatedTokens: 12,
      budgets: [
        { name: 'team-day', scope: {}, limit: 100, used: 30, remaining: 70, window: 'day', resets_at: null, action: 'deny' },
        { name: 'agent-month', scope: { agent: 'bot' }, limit: 10, used: 10, remaining: 0, window: 'month', resets_at: '2026-12-01T00:00:00.000Z', action: 'warn' },
      ],
    });
  });

  it('names the file, line, case and field of every problem', () => {
    const problems = problemsOf(`cases:
  - name: fine
    request: {tool: a}
    expect: {allow: true}
  - name: typo in expect
    request: {tool: a}
    expect:
      allow: yes please
      reason_contains: [x]
  - request: {tool: a}
    expect: {allow: false}
`);
    const text = problems.map(formatScenarioProblem);
    assert.deepEqual(text, [
      's.yaml:8: case 2, expect.allow: must be true or false, not string "yes please"',
      's.yaml:9: case 2, expect.reason_contains: unknown field (known: allow, reasons_contain, reasons, status, headers, mask, cost)',
      's.yaml:10: case 3: needs a name (shown when the case fails)',
    ]);
    assert.equal(problems[0]!.caseIndex, 1);
    assert.equal(problems[0]!.field, 'expect.allow');
  });

  it('refuses requests that do not say what is called, or mix incompatible fields', () => {
    const problems = problemsOf(`cases:
  - name: nothing
    request: {arguments: {a: 1}}
    expect: {allow: true}
  - name: transport with a tool
    request: {transport: GET, tool: x}
    expect: {allow: true}
  - name: params and tool
    request: {tool: x, params: {name: y}}
    expect: {allow: true}
  - name: bad budget
    request: {tool: x}
    budget: [{limit: -1}]
    expect: {allow: true}
`).map(formatScenarioProblem);
    assert.ok(problems.some((p) => p.startsWith('s.yaml:3: case 1, request: give the call')), problems.join('\n'));
    assert.ok(problems.includes('s.yaml:6: case 2, request.tool: a transport request (GET) has no JSON-RPC message, so it takes no tool'), problems.join('\n'));
    assert.ok(problems.includes('s.yaml:9: case 3, request.tool: give either params (sent as they are) or tool, not both'), problems.join('\n'));
    assert.ok(problems.includes('s.yaml:13: case 4, budget[0]: needs a name'), problems.join('\n'));
    assert.ok(problems.includes('s.yaml:13: case 4, budget[0].limit: must be at least 0'), problems.join('\n'));
  });

  it('reports YAML syntax errors with their line, duplicate names, and empty files', () => {
    const syntax = problemsOf('cases:\n  - name: a\n    request: {tool: x\n    expect: {allow: true}\n');
    assert.equal(syntax.length >= 1, true);
    assert.match(formatScenarioProblem(syntax[0]!), /^s\.yaml:\d+: not valid YAML: /);
    const dup = problemsOf('cases:\n  - {name: a, request: {tool: x}, expect: {allow: true}}\n  - {name: a, request: {tool: y}, expect: {allow: true}}\n');
    assert.deepEqual(dup.map(formatScenarioProblem), ['s.yaml:3: case 2, name: "a" is also the name of case 1; names must be unique within a file']);
    assert.match(formatScenarioProblem(problemsOf('')[0]!), /empty scenario file/);
    assert.deepEqual(problemsOf('cases: []\n').map(formatScenarioProblem), ['s.yaml:1: cases: must be a non-empty list of cases, not a list']);
    assert.deepEqual(problemsOf('defaults: {sever: x}\ncases: [{name: a, request: {tool: x}, expect: {allow: true}}]\n').map(formatScenarioProblem),
      ['s.yaml:1: defaults.sever: unknown field (known: server, namespace, identity, time)']);
  });
});
