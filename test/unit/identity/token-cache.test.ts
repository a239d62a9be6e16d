import { strict as assert } from 'node:assert';
import { TokenCache } from '../../../src/identity/token-cache.js';

describe('TokenCache', () => {
  it('returns a value until its expiry, then forgets it', () => {
    const c = new TokenCache<string>(10);
    c.set('t', 'alice', 2000, 1000);
    assert.equal(c.get('t', 1000), 'alice');
    assert.equal(c.get('t', 1999), 'alice');
    assert.equal(c.get('t', 2000), undefined);
    assert.equal(c.size, 0);
  });

  it('does not store what is already expired', () => {
    const c = new TokenCache<string>(10);
    c.set('t', 'alice', 1000, 1000);
    c.set('u', 'bob', Number.NaN, 1000);
    assert.equal(c.size, 0);
  });

  it('stays within its bound, dropping the oldest entry first', () => {
    const c = new TokenCache<number>(3);
    for (let i = 0; i < 5; i++) c.set(`t${i}`, i, 10_000, 0);
    assert.equal(c.size, 3);
    assert.deepEqual(['t0', 't1', 't2', 't3', 't4'].map((k) => c.get(k, 1)), [undefined, undefined, 2, 3, 4]);
  });

  it('replaces an entry for the same key without evicting others', () => {
    const c = new TokenCache<number>(2);
    c.set('a', 1, 10_000, 0);
    c.set('b', 2, 10_000, 0);
    c.set('a', 3, 10_000, 0);
    assert.deepEqual([c.get('a', 1), c.get('b', 1)], [3, 2]);
  });

  it('stores nothing when its size is 0', () => {
    const c = new TokenCache<number>(0);
    c.set('a', 1, 10_000, 0);
    assert.equal(c.get('a', 1), undefined);
  });
});
