import { strict as assert } from 'node:assert';
import {
  decodeUsageState, emptyUsageState, encodeUsageState, fairShare, leaseSize, resetState, settle, unknownOutcome, type LeaseRecord, type SettleRequest, type UsageState,
} from '../../../src/budget/lease.js';

const base = (over: Partial<SettleRequest>): SettleRequest => ({ held: null, spent: 0, want: 100, limit: 1000, now: 10_000, newEpoch: 'E2', ...over });
const lease = (amount: number, epoch = 'E1'): LeaseRecord => ({ epoch, amount, grantedAt: 1 });
const st = (committed: number, reported = 0, epoch = 'E1', holders = 1): UsageState => ({ epoch, committed, reported, holders });

describe('budget leases (pure)', () => {
  it('grants a lease from what is not committed, and counts it committed', () => {
    const s = st(900);
    const r = settle(s, base({ want: 500 }));
    assert.deepEqual(r.grant, { epoch: 'E1', amount: 100, grantedAt: 10_000 });
    assert.equal(r.available, 0);
    assert.equal(r.state.committed, 1000);
    assert.equal(s.committed, 900, 'input is not modified');
  });

  it('reports spending, returns the unspent rest and renews, keeping committed ≤ limit', () => {
    const r = settle(st(300, 200), base({ held: lease(100), spent: 70, want: 100 }));
    assert.equal(r.state.committed, 300 - 100 + 70 + 100);
    assert.equal(r.state.reported, 270);
    assert.equal(r.grant?.amount, 100);
  });

  it('counts spending past the lease (a response larger than what was left) as committed', () => {
    const r = settle(st(1000, 900), base({ held: lease(100), spent: 140, want: 100 }));
    assert.equal(r.state.committed, 1040);
    assert.equal(r.grant, null);
    assert.equal(r.available, -40);
  });

  it('gives everything back with want 0', () => {
    const r = settle(st(100), base({ held: lease(100), spent: 30, want: 0 }));
    assert.equal(r.grant, null);
    assert.equal(r.state.committed, 30);
    assert.equal(r.state.reported, 30);
  });

  it('the size of the entry does not depend on how many replicas hold leases', () => {
    let s = emptyUsageState();
    for (let i = 0; i < 1000; i++) s = settle(s, base({ want: 1, limit: 1_000_000, newEpoch: 'E' })).state;
    assert.equal(s.committed, 1000);
    assert.ok(encodeUsageState(s).length < 200, encodeUsageState(s));
  });

  it('takes a lease back only in the epoch that granted it; an entry made again counts it spent', () => {
    // The bucket was recreated: the new entry never counted our lease.
    const fresh = settle(emptyUsageState(), base({ held: lease(100), spent: 30, want: 50, fresh: true, newEpoch: 'E9' }));
    assert.equal(fresh.state.epoch, 'E9');
    assert.equal(fresh.state.committed, 50, 'the 30 spent were inside a lease this entry never counted');
    const past = settle(emptyUsageState(), base({ held: lease(100), spent: 130, want: 0, fresh: true }));
    assert.equal(past.state.committed, 30, 'only spending past the old lease is new');
    // An entry in the earlier format (no epoch) never subtracts a lease either.
    const old = decodeUsageState(JSON.stringify({ used: 100, leases: {} }));
    assert.equal(settle(old, base({ held: lease(100, ''), spent: 10, want: 0 })).state.committed, 100);
  });

  it('counts the replicas holding leases, and grants no more than a fair share past what a replica must keep', () => {
    let s = emptyUsageState();
    const grants: number[] = [];
    for (let i = 0; i < 100; i++) {
      const r = settle(s, base({ want: 44_000, limit: 4_400_000, fresh: i === 0 }));
      s = r.state;
      grants.push(r.grant?.amount ?? 0);
    }
    assert.equal(s.holders, 100);
    assert.deepEqual(grants.slice(0, 3), [44_000, 44_000, 44_000], 'the first replicas get what they ask for');
    grants.forEach((g, i) => assert.equal(g, Math.min(44_000, fairShare(4_400_000, i + 1)), `replica ${i + 1}`));
    // Once all hold the share for their number (the store shrinks bigger leases), half is free.
    assert.ok(1000 * fairShare(4_400_000, 1000) <= 2_200_000);
    // A replica that must keep more (calls in flight, its spending rate) gets it past the share.
    const busy = settle(s, base({ want: 30_000, keep: 30_000, limit: 4_400_000 }));
    assert.equal(busy.grant?.amount, Math.min(30_000, 4_400_000 - s.committed));
    // Giving a lease back, or not getting one, is one holder fewer.
    const held = { epoch: s.epoch, amount: grants[99]!, grantedAt: 1 };
    assert.equal(settle(s, base({ held, want: 0, limit: 4_400_000 })).state.holders, 99);
    assert.equal(fairShare(1000, 0), 500);
    assert.equal(fairShare(3, 1000), 1, 'never 0');
  });

  it('after a write with an unknown outcome, the next write is safe whether it landed or not', () => {
    const held = lease(100);
    for (const spentInWrite of [0, 60, 100, 160]) {
      const spentSince = 25;
      const before = st(500, 100);
      const first = settle(before, base({ held, spent: spentInWrite, want: 100 }));
      const carry = unknownOutcome(held, spentInWrite, spentSince);
      // The true total: everything spent, plus the lease granted by the retry.
      for (const landed of [true, false]) {
        const r = settle(landed ? first.state : before, base({ held: null, spent: carry, want: 100 }));
        const truth = 400 + spentInWrite + spentSince + (r.grant?.amount ?? 0);
        assert.ok(r.state.committed >= truth, `landed ${landed}, spent ${spentInWrite}: committed ${r.state.committed} < ${truth}`);
      }
    }
  });

  it('reads the earlier format (used plus listed leases, all committed) and anything unreadable as empty', () => {
    const s = decodeUsageState(JSON.stringify({ used: 500, leases: { a: { id: 'x', amount: 10, expiresAt: 1 }, b: { id: 'y', amount: 20, expiresAt: 1 } }, resets: 2 }));
    assert.deepEqual(s, { epoch: '', committed: 530, reported: 500, holders: 2, resets: 2 });
    assert.deepEqual(decodeUsageState('not json'), emptyUsageState());
    assert.deepEqual(decodeUsageState('{"v":2,"committed":-5,"reported":"x"}'), emptyUsageState());
    // Older replicas read `used`: they see every lease as spent.
    assert.equal(JSON.parse(encodeUsageState(st(700, 300))).used, 700);
  });

  it('sizes leases by fraction within [min, max], up to the spending rate, never above the limit', () => {
    const s = { fraction: 0.01, min: 100, max: 5000, ttlMs: 30_000 };
    assert.equal(leaseSize(200_000, s), 2000);
    assert.equal(leaseSize(1000, s), 100);
    assert.equal(leaseSize(10_000_000, s), 5000);
    assert.equal(leaseSize(200_000, s, 2, 1000), 4000); // 2 tokens/ms over two 1 s intervals
    assert.equal(leaseSize(50, s), 50);
  });

  it('a reset forgets what was reported and keeps leases committed, and round-trips through JSON', () => {
    const r = resetState({ ...st(530, 500), limit: 1000 }, 5);
    assert.equal(r.committed, 30);
    assert.equal(r.reported, 0);
    assert.equal(r.resets, 1);
    assert.deepEqual(decodeUsageState(encodeUsageState(r)), r);
  });
});
