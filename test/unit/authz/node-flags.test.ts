import { strict as assert } from 'node:assert';
import { AUTHZ_NODE_FLAGS, authzNodeOptions } from '../../../src/authz/node-flags.js';

describe('authz/node-flags', () => {
  it('puts the heap flags first so an operator-set NODE_OPTIONS still wins', () => {
    assert.equal(authzNodeOptions(), AUTHZ_NODE_FLAGS.join(' '));
    assert.equal(authzNodeOptions('  --max-semi-space-size=8 '), `${AUTHZ_NODE_FLAGS.join(' ')} --max-semi-space-size=8`);
  });

  it('names only flags Node accepts in NODE_OPTIONS', () => {
    for (const f of AUTHZ_NODE_FLAGS) assert.ok(process.allowedNodeEnvironmentFlags.has(f.split('=')[0]!), `${f} is not allowed in NODE_OPTIONS`);
  });
});
