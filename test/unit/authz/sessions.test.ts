import { strict as assert } from 'node:assert';
import { SessionOwners } from '../../../src/authz/sessions.js';

const alice = { iss: 'https://idp', sub: 'alice', agent: 'bot' };
const aliceOtherAgent = { ...alice, agent: 'other-bot' };
const bob = { iss: 'https://idp', sub: 'bob', agent: 'bot' };
const aliceElsewhere = { ...alice, iss: 'https://other-idp' };

describe('session owners', () => {
  it('knows the owner; issuer, subject and agent must all match', () => {
    const s = new SessionOwners();
    s.bind('s1', alice, 'initialize', 0);
    assert.equal(s.standing('s1', alice, 1).kind, 'owned');
    for (const other of [bob, aliceOtherAgent, aliceElsewhere]) assert.equal(s.standing('s1', other, 1).kind, 'foreign');
    assert.equal(s.standing('s2', alice, 1).kind, 'unknown');
    assert.equal(s.standing(null, alice, 1).kind, 'none');
  });

  it('never rebinds a live session to someone else', () => {
    const s = new SessionOwners();
    s.bind('s1', alice, 'initialize', 0);
    const held = s.bind('s1', bob, 'first_request', 1);
    assert.deepEqual(held.owner, alice);
    assert.equal(s.standing('s1', bob, 2).kind, 'foreign');
  });

  it('forgets a session idle longer than its lifetime; use keeps it alive', () => {
    const s = new SessionOwners(1000);
    s.bind('s1', alice, 'initialize', 0);
    s.bind('s2', alice, 'initialize', 0);
    assert.equal(s.standing('s1', alice, 900).kind, 'owned');
    assert.equal(s.standing('s1', alice, 1800).kind, 'owned', 'refreshed at 900');
    assert.equal(s.standing('s2', bob, 1800).kind, 'unknown', 'expired: a foreign caller cannot tell it existed');
    s.bind('s2', bob, 'first_request', 1800);
    assert.equal(s.standing('s2', bob, 1801).kind, 'owned');
  });

  it('holds at most `max` sessions, dropping the least recently used', () => {
    const s = new SessionOwners(60_000, 3);
    for (const id of ['a', 'b', 'c']) s.bind(id, alice, 'initialize', 0);
    s.standing('a', alice, 1); // a is now the most recent
    s.bind('d', alice, 'initialize', 2);
    assert.equal(s.size, 3);
    assert.equal(s.standing('b', alice, 3).kind, 'unknown');
    for (const id of ['a', 'c', 'd']) assert.equal(s.standing(id, alice, 3).kind, 'owned', id);
  });
});
