import { strict as assert } from 'node:assert';
import { bearerToken, MAX_TOKEN_LENGTH } from '../../../src/identity/bearer.js';
import { AuthError, type AuthFailure } from '../../../src/identity/types.js';

function refusal(header: string | undefined): AuthFailure {
  try {
    bearerToken(header);
  } catch (e) {
    assert.ok(e instanceof AuthError, `expected AuthError, got ${String(e)}`);
    return e.failure;
  }
  assert.fail(`header ${JSON.stringify(header)} was accepted`);
}

describe('bearerToken', () => {
  const jwt = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln';

  it('extracts the token, with any case of the scheme and surrounding whitespace', () => {
    assert.equal(bearerToken(`Bearer ${jwt}`), jwt);
    assert.equal(bearerToken(`bearer ${jwt}`), jwt);
    assert.equal(bearerToken(`BEARER   ${jwt}  `), jwt);
    assert.equal(bearerToken('Bearer abc-._~+/=='), 'abc-._~+/==');
  });

  it('reports a missing token as missing_token', () => {
    assert.equal(refusal(undefined), 'missing_token');
    assert.equal(refusal(''), 'missing_token');
    assert.equal(refusal('   '), 'missing_token');
  });

  it('refuses anything but exactly one bearer token as malformed_token', () => {
    for (const h of ['Bearer', 'Bearer ', `Basic ${jwt}`, `Token ${jwt}`, jwt, `Bearer ${jwt} ${jwt}`, `Bearer ${jwt},Bearer ${jwt}`,
      'Bearer a=b', 'Bearer ab"c', 'Bearer\tabc', `Bearer ${jwt}\nX: y`, 'Bearer ===']) {
      assert.equal(refusal(h), 'malformed_token', h);
    }
  });

  it('refuses oversized tokens before matching them', () => {
    assert.equal(bearerToken(`Bearer ${'a'.repeat(MAX_TOKEN_LENGTH)}`).length, MAX_TOKEN_LENGTH);
    assert.equal(refusal(`Bearer ${'a'.repeat(MAX_TOKEN_LENGTH + 1)}`), 'malformed_token');
    assert.equal(refusal(`Bearer ${'a'.repeat(10 * MAX_TOKEN_LENGTH)}`), 'malformed_token');
  });
});
