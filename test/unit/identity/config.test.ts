import { strict as assert } from 'node:assert';
import { createVerifier } from '../../../src/identity/verifier.js';
import type { IdentityConfig } from '../../../src/identity/types.js';

const good: IdentityConfig = {
  issuer: 'http://127.0.0.1:5556', audience: ['http://127.0.0.1:10000/mcp'], algorithms: ['ES256'], clockToleranceSec: 30,
  claims: { team: 'team', groups: 'groups', agent: 'agent' },
};

describe('createVerifier configuration', () => {
  it('accepts a sound configuration', () => {
    assert.equal(typeof createVerifier(good).verify, 'function');
  });

  it('refuses configurations that could never verify safely', () => {
    const cases: Array<[Partial<IdentityConfig>, RegExp]> = [
      [{ algorithms: ['none'] }, /"none" is not accepted/],
      [{ algorithms: ['ES256', 'HS256'] }, /"HS256" is not accepted/],
      [{ algorithms: [] }, /at least one algorithm/],
      [{ audience: [] }, /audience/],
      [{ audience: [''] }, /audience/],
      [{ issuer: '' }, /issuer/],
      [{ issuer: 'not a url' }, /not a URL/],
      [{ issuer: 'ftp://idp' }, /http/],
      [{ jwksUri: 'file:///etc/keys' }, /http/],
      [{ clockToleranceSec: -1 }, /clockTolerance/],
      [{ jwksCooldownSec: Number.NaN }, /jwksCooldownSec/],
    ];
    for (const [patch, msg] of cases) assert.throws(() => createVerifier({ ...good, ...patch }), msg, JSON.stringify(patch));
  });
});
