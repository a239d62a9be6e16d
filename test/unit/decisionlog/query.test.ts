import { strict as assert } from 'node:assert';
import { compileFilter, globMatch, parseTimeArg, StatsBuilder, TimeArgError, revisionOf, toolClassOf } from '../../../src/decisionlog/query.js';
import { sampleDraft } from './fixtures.js';

const NOW = new Date('2025-03-10T15:30:00Z');

describe('decision log query filters', () => {
  it('parses absolute, relative and named times', () => {
    assert.equal(parseTimeArg('2025-03-01', NOW).toISOString(), '2025-03-01T00:00:00.000Z');
    assert.equal(parseTimeArg('2025-03-01T12:00:00+02:00', NOW).toISOString(), '2025-03-01T10:00:00.000Z');
    assert.equal(parseTimeArg('24h', NOW).toISOString(), '2025-03-09T15:30:00.000Z');
    assert.equal(parseTimeArg('30m', NOW).toISOString(), '2025-03-10T15:00:00.000Z');
    assert.equal(parseTimeArg('7d', NOW).toISOString(), '2025-03-03T15:30:00.000Z');
    assert.equal(parseTimeArg('today', NOW).toISOString(), '2025-03-10T00:00:00.000Z');
    assert.equal(parseTimeArg('yesterday', NOW).toISOString(), '2025-03-09T00:00:00.000Z');
    assert.equal(parseTimeArg('now', NOW), NOW);
    for (const bad of ['', 'last week', '24', '2025-13-45', '5y']) assert.throws(() => parseTimeArg(bad, NOW), TimeArgError, bad);
  });

  it('matches every field, exactly or by glob, and combines them with AND', () => {
    const deny = sampleDraft({ i: 1, allow: false, sub: 'bob', team: 'billing-ops', agent: 'ci-bot', server: 'billing', tool: 'delete_records', reasons: ['Deletion needs an approved change ticket'], revision: 'r42' });
    const allow = sampleDraft({ i: 2, sub: 'alice', team: 'payments', tool: 'search' });
    const m = (f: Parameters<typeof compileFilter>[0]) => [deny, allow].filter(compileFilter(f)).map((r) => r.identity.sub);
    assert.deepEqual(m({}), ['bob', 'alice']);
    assert.deepEqual(m({ tool: 'delete_records' }), ['bob']);
    assert.deepEqual(m({ tool: 'delete_*' }), ['bob']);
    assert.deepEqual(m({ tool: 'delete' }), [], 'plain values match exactly');
    assert.deepEqual(m({ team: 'billing*', decision: 'deny' }), ['bob']);
    assert.deepEqual(m({ decision: 'allow' }), ['alice']);
    assert.deepEqual(m({ reason: 'CHANGE TICKET' }), ['bob']);
    assert.deepEqual(m({ agent: 'ci-bot', server: 'billing', revision: 'r42' }), ['bob']);
    assert.deepEqual(m({ agent: 'ci-bot', server: 'search' }), []);
    assert.deepEqual(m({ decisionId: allow.decision_id }), ['alice']);
    assert.deepEqual(m({ namespace: 'default', method: 'tools/call' }), ['bob', 'alice']);
  });

  it('matches globs as the equivalent anchored expression does, and in bounded time on crafted values', () => {
    const toRe = (p: string): RegExp => new RegExp('^' + p.split('*').map((x) => x.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$');
    const alphabet = ['a', 'b', '*', '.', '_'];
    let seed = 7;
    const pick = (n: number): string => {
      let out = '';
      for (let k = 0; k < n; k++) { seed = (seed * 1103515245 + 12345) % 2147483648; out += alphabet[seed % alphabet.length]; }
      return out;
    };
    for (let n = 0; n < 5000; n++) {
      const p = pick(1 + (n % 7));
      const v = pick(n % 11).replace(/\*/g, 'a');
      assert.equal(globMatch(p, v), toRe(p).test(v), `${p} vs ${v}`);
    }
    // a*a*…*b on a long run of a's: exponential for a backtracking expression, O(p·v) here.
    const t0 = Date.now();
    assert.equal(globMatch('*a*a*a*a*a*a*a*a*a*a*b', 'a'.repeat(20_000)), false);
    assert.ok(Date.now() - t0 < 2000);
  });

  it('filters by time: since inclusive, until exclusive', () => {
    const at = (ts: string) => sampleDraft({ i: 1, timestamp: ts });
    const f = compileFilter({ since: new Date('2025-03-09T00:00:00Z'), until: new Date('2025-03-10T00:00:00Z') });
    assert.equal(f(at('2025-03-09T00:00:00.000Z')), true);
    assert.equal(f(at('2025-03-09T23:59:59.999Z')), true);
    assert.equal(f(at('2025-03-10T00:00:00.000Z')), false);
    assert.equal(f(at('2025-03-08T23:59:59.999Z')), false);
  });

  it('matches a refusal by its error text', () => {
    const r = sampleDraft({ i: 1, allow: false, reasons: [], withInput: false });
    r.result.error = 'invalid_token: signature verification failed';
    assert.equal(compileFilter({ reason: 'invalid_token' })(r), true);
  });

  it('aggregates top denied tools, denies per team and per reason', () => {
    const b = new StatsBuilder();
    const add = (n: number, o: Parameters<typeof sampleDraft>[0]) => { for (let i = 0; i < n; i++) b.add(sampleDraft(o)); };
    add(5, { allow: true });
    add(3, { allow: false, team: 'a', server: 'billing', tool: 'delete_records', reasons: ['no deletes'] });
    add(2, { allow: false, team: 'b', server: 'billing', tool: 'delete_records', reasons: ['no deletes', 'off hours'] });
    add(1, { allow: false, team: null, server: 'crm', tool: null, method: 'tools/list', reasons: ['off hours'] });
    // Issue 18: a denied initialize is no tool; a budget refusal never reached policy.
    add(1, { allow: false, team: 'a', server: 'crm', tool: null, method: 'initialize', reasons: ['off hours'] });
    const overBudget = sampleDraft({ allow: false, team: 'c', server: 'billing', tool: 'search', reasons: ['budget "x" is exhausted'] });
    overBudget.result.policy_allow = null;
    b.add(overBudget);
    const s = b.result(2);
    assert.equal(s.total, 13);
    assert.equal(s.allowed, 5);
    assert.equal(s.denied, 8);
    assert.equal(s.errors, 1, 'the budget refusal counts as before policy');
    assert.deepEqual(s.topDeniedTools, [{ key: { server: 'billing', tool: 'delete_records' }, count: 5 }, { key: { server: 'billing', tool: 'search' }, count: 1 }]);
    assert.deepEqual(s.deniesPerTeam, [{ key: 'a', count: 4 }, { key: 'b', count: 2 }]);
    assert.deepEqual(s.deniesPerReason, [{ key: 'no deletes', count: 5 }, { key: 'off hours', count: 4 }]);
  });

  it('finds the policy revision whatever the bundle is called', () => {
    assert.equal(revisionOf({ bundles: { tollgate: { revision: 'a' } } }), 'a');
    assert.equal(revisionOf({ bundles: { other: { revision: 'b' } } }), 'b');
    assert.equal(revisionOf({ bundles: {} }), null);
  });
});

describe('review filters: tool class and annotations (issue 18)', () => {
  const call = (tool: string, annotations: Record<string, unknown> | null, method = 'tools/call') => {
    const r = sampleDraft({ i: 1, tool, method });
    (r.input!.mcp as { annotations: unknown }).annotations = annotations;
    return r;
  };
  const wipe = call('wipe', { destructiveHint: true });
  const read = call('read', { readOnlyHint: true });
  const write = call('write', { destructiveHint: false, openWorldHint: true });
  const unknown = call('mystery', null);
  const listing = call('read', { readOnlyHint: true }, 'tools/list');

  it('classes tools by the MCP hints and their defaults; no annotations known is unknown', () => {
    assert.deepEqual([wipe, read, write, unknown, listing, call('x', {})].map(toolClassOf), ['destructive', 'read', 'write', 'unknown', null, 'destructive']);
  });

  it('--class and --annotation select exactly the matching calls', () => {
    const all = [wipe, read, write, unknown, listing];
    const names = (f: Parameters<typeof compileFilter>[0]) => all.filter(compileFilter(f)).map((r) => `${r.mcp.method}:${r.mcp.tool}`);
    assert.deepEqual(names({ toolClass: ['destructive'] }), ['tools/call:wipe']);
    assert.deepEqual(names({ toolClass: ['destructive', 'unknown'] }), ['tools/call:wipe', 'tools/call:mystery']);
    assert.deepEqual(names({ toolClass: ['read'] }), ['tools/call:read']);
    assert.deepEqual(names({ annotations: [['openWorldHint', true]] }), ['tools/call:write']);
    assert.deepEqual(names({ annotations: [['readOnlyHint', true]] }), ['tools/call:read', 'tools/list:read']);
    assert.deepEqual(names({ annotations: [['readOnlyHint', 'true']] }), [], 'a string is not the boolean');
  });
});
