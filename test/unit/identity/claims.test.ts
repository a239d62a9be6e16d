import { strict as assert } from 'node:assert';
import { delegationChain, identityFromClaims, MAX_DELEGATION_DEPTH } from '../../../src/identity/claims.js';
import { devPayload } from '../../../src/identity/mint.js';
import { AuthError } from '../../../src/identity/types.js';

const names = { team: 'team', groups: 'groups', agent: 'agent' };
const base = { iss: 'https://idp.example', sub: 'alice', aud: 'https://mcp.example/mcp', exp: 2_000_000_000 };

function invalid(payload: Record<string, unknown>, claim: string, cfg = names): void {
  assert.throws(() => identityFromClaims(payload, cfg), (e: unknown) => {
    assert.ok(e instanceof AuthError);
    assert.equal(e.failure, 'invalid_claims');
    assert.match(e.message, new RegExp(`"${claim.replace(/\./g, '\\.')}"`));
    return true;
  });
}

describe('identityFromClaims', () => {
  it('maps the standard and configured claims', () => {
    const id = identityFromClaims({ ...base, team: 'payments', groups: ['eng', 'oncall'], agent: 'claude', scope: 'tools:read tools:write' }, names);
    assert.deepEqual(
      { sub: id.sub, iss: id.iss, aud: id.aud, team: id.team, groups: id.groups, agent: id.agent, scopes: id.scopes, delegation: id.delegation, expiresAt: id.expiresAt },
      { sub: 'alice', iss: 'https://idp.example', aud: ['https://mcp.example/mcp'], team: 'payments', groups: ['eng', 'oncall'], agent: 'claude', scopes: ['tools:read', 'tools:write'], delegation: [], expiresAt: 2_000_000_000 },
    );
    assert.equal(id.claims.team, 'payments');
  });

  it('reads team, groups and agent from the configured claim names', () => {
    const cfg = { team: 'https://tollgate.dev/team', groups: 'roles', agent: 'workload' };
    const id = identityFromClaims({ ...base, 'https://tollgate.dev/team': 'risk', roles: ['admin'], workload: 'batch', team: 'ignored' }, cfg);
    assert.equal(id.team, 'risk');
    assert.deepEqual(id.groups, ['admin']);
    assert.equal(id.agent, 'batch');
  });

  it('defaults absent optional claims', () => {
    const id = identityFromClaims({ ...base, aud: ['a', 'b'] }, names);
    assert.equal(id.team, null);
    assert.equal(id.agent, null);
    assert.deepEqual(id.groups, []);
    assert.deepEqual(id.scopes, []);
    assert.deepEqual(id.aud, ['a', 'b']);
  });

  it('falls back to azp, then client_id, for the agent', () => {
    assert.equal(identityFromClaims({ ...base, azp: 'web-app', client_id: 'cli' }, names).agent, 'web-app');
    assert.equal(identityFromClaims({ ...base, client_id: 'cli' }, names).agent, 'cli');
    assert.equal(identityFromClaims({ ...base, agent: 'x', azp: 'web-app' }, names).agent, 'x');
  });

  it('reads scopes from scope (string), scp (array or string), merged without duplicates', () => {
    assert.deepEqual(identityFromClaims({ ...base, scope: ' a  b ' }, names).scopes, ['a', 'b']);
    assert.deepEqual(identityFromClaims({ ...base, scp: ['x', 'y'] }, names).scopes, ['x', 'y']);
    assert.deepEqual(identityFromClaims({ ...base, scp: 'x y' }, names).scopes, ['x', 'y']);
    assert.deepEqual(identityFromClaims({ ...base, scope: 'a x', scp: ['x', 'y'] }, names).scopes, ['a', 'x', 'y']);
  });

  it('flattens the RFC 8693 act chain, outermost (current) actor first', () => {
    const id = identityFromClaims({ ...base, act: { sub: 'agent-x', client_id: 'c1', act: { sub: 'orchestrator', act: { sub: 'alice-laptop' } } } }, names);
    assert.deepEqual(id.delegation, [{ sub: 'agent-x', client_id: 'c1' }, { sub: 'orchestrator' }, { sub: 'alice-laptop' }]);
  });

  it('refuses wrongly typed claims as invalid_claims', () => {
    invalid({ ...base, sub: 42 }, 'sub');
    invalid({ ...base, sub: '' }, 'sub');
    invalid({ ...base, iss: undefined }, 'iss');
    invalid({ ...base, exp: '2000000000' }, 'exp');
    invalid({ ...base, aud: [1] }, 'aud');
    invalid({ ...base, aud: [] }, 'aud');
    invalid({ ...base, team: ['payments'] }, 'team');
    invalid({ ...base, groups: 'eng' }, 'groups');
    invalid({ ...base, groups: ['eng', 3] }, 'groups');
    invalid({ ...base, agent: { name: 'x' } }, 'agent');
    invalid({ ...base, azp: 7 }, 'azp');
    invalid({ ...base, scope: ['a'] }, 'scope');
    invalid({ ...base, scp: [1] }, 'scp');
    invalid({ ...base, scp: { a: 1 } }, 'scp');
    invalid({ ...base, act: 'agent-x' }, 'act');
    invalid({ ...base, act: [{ sub: 'x' }] }, 'act');
    invalid({ ...base, act: { sub: 'x', act: 'y' } }, 'act.act');
    invalid({ ...base, act: { sub: 5 } }, 'act.sub');
  });

  it('treats null optional claims as absent', () => {
    const id = identityFromClaims({ ...base, team: null, groups: null, agent: null, act: null }, names);
    assert.equal(id.team, null);
    assert.deepEqual(id.groups, []);
    assert.deepEqual(id.delegation, []);
  });

  it('bounds the depth of the act chain', () => {
    let act: Record<string, unknown> = { sub: 'a0' };
    for (let i = 1; i < MAX_DELEGATION_DEPTH; i++) act = { sub: `a${i}`, act };
    assert.equal(delegationChain({ act }).length, MAX_DELEGATION_DEPTH);
    invalid({ ...base, act: { sub: 'one-more', act } }, `act${'.act'.repeat(MAX_DELEGATION_DEPTH)}`);
  });
});

describe('devPayload', () => {
  it('writes claims the verifier maps back', () => {
    const p = devPayload('http://127.0.0.1:5556', {
      sub: 'alice', team: 'payments', agent: 'claude', groups: ['eng'], scopes: ['a', 'b'], audience: 'http://r/mcp', ttlSec: 60, act: ['agent-x', 'orchestrator'], nowSec: 1000,
    });
    assert.equal(p.iat, 1000);
    assert.equal(p.exp, 1060);
    assert.equal(p.scope, 'a b');
    const id = identityFromClaims(p, names);
    assert.deepEqual([id.team, id.agent, id.groups, id.scopes], ['payments', 'claude', ['eng'], ['a', 'b']]);
    assert.deepEqual(id.delegation, [{ sub: 'agent-x' }, { sub: 'orchestrator' }]);
  });

  it('lets extra override or drop standard claims', () => {
    const p = devPayload('i', { sub: 's', audience: 'a', ttlSec: 60, extra: { exp: undefined, team: 7 } });
    assert.equal(JSON.parse(JSON.stringify(p)).exp, undefined);
    assert.equal(p.team, 7);
  });

  it('refuses a token without subject or audience', () => {
    assert.throws(() => devPayload('i', { sub: '', audience: 'a', ttlSec: 1 }), /sub/);
    assert.throws(() => devPayload('i', { sub: 's', audience: [], ttlSec: 1 }), /audience/);
  });
});
