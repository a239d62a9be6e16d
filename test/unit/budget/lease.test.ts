import { strict as assert } from 'node:assert';
import { decodeLeaseState, emptyLeaseState, encodeLeaseState, leasedTotal, leaseSize, resetState, settle, type LeaseState, type SettleRequest } from '../../../src/budget/lease.js';

const base = (over: Partial<SettleRequest>): SettleRequest => ({
  replica: 'a', held: null, spent: 0, want: 100, limit: 1000, now: 10_000, ttlMs: 30_000, skewMs: 2000, newId: 'L1', ...over,
});

describe('budget leases (pure)', () => {
  it('grants a lease from what is neither used nor leased', () => {
    const s: LeaseState = { used: 600, leases: { b: { id: 'x', amount: 300, expiresAt: 50_000 } } };
    const r = settle(s, base({ want: 500 }));
    assert.deepEqual(r.grant, { id: 'L1', amount: 100, expiresAt: 40_000 });
    assert.equal(r.available, 0);
    assert.equal(r.state.used + leasedTotal(r.state), 1000);
    assert.deepEqual(s.leases.a, undefined, 'input is not modified');
  });

  it('reports spending, returns the unspent rest and renews, keeping used + leased ≤ limit', () => {
    const held = { id: 'L0', amount: 100, expiresAt: 20_000 };
    const s: LeaseState = { used: 0, leases: { a: held } };
    const r = settle(s, base({ held, spent: 70, want: 100 }));
    assert.equal(r.state.used, 70);
    assert.equal(r.grant?.amount, 100);
    assert.ok(r.state.used + leasedTotal(r.state) <= 1000);
  });

  it('counts spending past the lease (a response larger than what was left) as used', () => {
    const held = { id: 'L0', amount: 100, expiresAt: 20_000 };
    const r = settle({ used: 900, leases: { a: held } }, base({ held, spent: 140, want: 100 }));
    assert.equal(r.state.used, 1040);
    assert.equal(r.grant, null);
    assert.equal(r.available, -40);
  });

  it('writes off an expired lease of another replica in full, after the skew grace', () => {
    const s: LeaseState = { used: 100, leases: { dead: { id: 'd', amount: 200, expiresAt: 9_000 } } };
    // 1 s past expiry is within the 2 s grace: kept.
    assert.equal(settle(s, base({ now: 10_000 })).folded, 0);
    const r = settle(s, base({ now: 11_000 }));
    assert.equal(r.folded, 200);
    assert.equal(r.state.used, 300);
    assert.equal(r.state.leases.dead, undefined);
  });

  it('does not count twice when this replica\'s own lease was written off while it was cut off', () => {
    const held = { id: 'L0', amount: 100, expiresAt: 5_000 };
    // Another replica folded our lease (used already includes its 100).
    const s: LeaseState = { used: 100, leases: {} };
    assert.equal(settle(s, base({ held, spent: 60, want: 0 })).state.used, 100);
    assert.equal(settle(s, base({ held, spent: 130, want: 0 })).state.used, 130);
  });

  it('writes off an unknown lease under its own name (a write whose reply was lost)', () => {
    const held = { id: 'L0', amount: 100, expiresAt: 50_000 };
    const s: LeaseState = { used: 40, leases: { a: { id: 'L-lost', amount: 100, expiresAt: 50_000 } } };
    const r = settle(s, base({ held, spent: 40, want: 0 }));
    assert.equal(r.state.used, 140);
    assert.equal(leasedTotal(r.state), 0);
  });

  it('gives everything back with want 0', () => {
    const held = { id: 'L0', amount: 100, expiresAt: 50_000 };
    const r = settle({ used: 0, leases: { a: held } }, base({ held, spent: 30, want: 0 }));
    assert.equal(r.grant, null);
    assert.deepEqual(r.state.leases, {});
    assert.equal(r.state.used, 30);
  });

  it('sizes leases by fraction within [min, max], up to the spending rate, never above the limit', () => {
    const s = { fraction: 0.01, min: 100, max: 5000, ttlMs: 30_000 };
    assert.equal(leaseSize(200_000, s), 2000);
    assert.equal(leaseSize(1000, s), 100);
    assert.equal(leaseSize(10_000_000, s), 5000);
    assert.equal(leaseSize(200_000, s, 2, 1000), 4000); // 2 tokens/ms over two 1 s intervals
    assert.equal(leaseSize(50, s), 50);
  });

  it('resets usage but keeps leases, and round-trips through JSON', () => {
    const s: LeaseState = { used: 500, leases: { a: { id: 'x', amount: 10, expiresAt: 1 } } };
    const r = resetState(s, 5);
    assert.equal(r.used, 0);
    assert.equal(r.resets, 1);
    assert.deepEqual(decodeLeaseState(encodeLeaseState(r)), r);
    assert.deepEqual(decodeLeaseState('not json'), emptyLeaseState());
  });
});
