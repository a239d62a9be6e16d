import { strict as assert } from 'node:assert';
import type { NatsConnection } from '@nats-io/transport-node';
import type { KV, KvEntry } from '@nats-io/kv';
import { DEFAULT_NATS_SETTINGS, parseBudgetConfig, type NatsBudgetSettings } from '../../../src/budget/config.js';
import { conflictBackoffMs, MAX_BACKOFF_MS, MAX_CAS_ROUNDS, MAX_GIVE_BACK_ROUNDS, nextReportInterval } from '../../../src/budget/contention.js';
import { createBudgetGate } from '../../../src/budget/gate.js';
import { decodeUsageState, type UsageState } from '../../../src/budget/lease.js';
import { NatsBudgetStore, usageKey } from '../../../src/budget/nats-store.js';
import type { ChargeSubject } from '../../../src/budget/types.js';
import { windowAt } from '../../../src/budget/window.js';

describe('budget lease contention (pure)', () => {
  it('waits nothing before the first round, then a jittered wait whose ceiling doubles up to the cap', () => {
    assert.equal(conflictBackoffMs(0, () => 0.99), 0);
    const almostOne = (): number => 1 - 1e-9;
    const ceilings = [1, 2, 3, 4, 5, 6, 7, 8, 30].map((lost) => conflictBackoffMs(lost, almostOne) + 1);
    assert.deepEqual(ceilings, [4, 8, 16, 32, 64, 128, MAX_BACKOFF_MS, MAX_BACKOFF_MS, MAX_BACKOFF_MS]);
    for (let lost = 1; lost < 50; lost++) assert.equal(conflictBackoffMs(lost, () => 0), 0, 'full jitter: the wait can be 0');
  });

  it('stays a whole number in [0, cap) whatever the random source returns', () => {
    for (const r of [Number.NaN, -1, 1, 1.5, Number.POSITIVE_INFINITY, 0.5]) {
      const w = conflictBackoffMs(20, () => r);
      assert.ok(Number.isInteger(w) && w >= 0 && w < MAX_BACKOFF_MS, `random ${r} gave ${w}`);
    }
    assert.equal(conflictBackoffMs(Number.NaN), 0);
    assert.equal(conflictBackoffMs(-3), 0);
  });

  it('bounds the waits of a whole sync: a renewal gives up within about 1.5 s, a give-back within about 9 s', () => {
    const worst = (rounds: number): number => {
      let sum = 0;
      for (let lost = 1; lost < rounds; lost++) sum += conflictBackoffMs(lost, () => 1 - 1e-9);
      return sum;
    };
    assert.ok(worst(MAX_CAS_ROUNDS) <= 1_600, `${worst(MAX_CAS_ROUNDS)} ms`);
    assert.ok(worst(MAX_GIVE_BACK_ROUNDS) <= 9_500, `${worst(MAX_GIVE_BACK_ROUNDS)} ms`);
    assert.ok(MAX_GIVE_BACK_ROUNDS > MAX_CAS_ROUNDS);
  });

  it('reports less often after conflicts, gives up to the ceiling, and comes back one interval per clean sync', () => {
    const sync = 1000;
    const max = 10_000;
    assert.equal(nextReportInterval(1000, 1, false, sync, max), 2000);
    assert.equal(nextReportInterval(2000, 3, false, sync, max), 4000);
    assert.equal(nextReportInterval(8000, 1, false, sync, max), max, 'capped');
    assert.equal(nextReportInterval(1000, MAX_CAS_ROUNDS, true, sync, max), max, 'a give-up goes straight to the ceiling');
    assert.equal(nextReportInterval(max, 0, false, sync, max), 9000);
    assert.equal(nextReportInterval(1500, 0, false, sync, max), sync, 'never below the sync interval');
    assert.equal(nextReportInterval(0, 0, false, sync, max), sync);
    // A ttl so short that a third of it is under the sync interval: the sync interval wins.
    assert.equal(nextReportInterval(1000, 2, false, sync, 300), sync);
    assert.equal(nextReportInterval(1000, 2, true, sync, 300), sync);
  });
});

/**
 * A stand-in for the usage bucket: entries with revisions, compare-and-set as JetStream does it.
 * `rivals`: how many of the next updates another replica's write gets in ahead of (the revision
 * moves, the update is refused as a wrong last sequence). `broken`: every call fails as a server
 * that does not answer would. `lostReplies`: how many of the next updates land but answer with a
 * timeout, as a write whose acknowledgement was lost does.
 */
class FakeKv {
  private readonly entries = new Map<string, { value: Uint8Array; revision: number }>();
  private seq = 0;
  rivals = 0;
  updates = 0;
  gets = 0;
  broken: Error | null = null;
  lostReplies = 0;

  state(key: string): UsageState {
    const e = this.entries.get(key);
    return decodeUsageState(e ? new TextDecoder().decode(e.value) : '{}');
  }

  get(key: string): Promise<KvEntry | null> {
    if (this.broken) return Promise.reject(this.broken);
    this.gets++;
    const e = this.entries.get(key);
    if (!e) return Promise.resolve(null);
    return Promise.resolve({ key, value: e.value, revision: e.revision, operation: 'PUT' } as unknown as KvEntry);
  }

  private write(key: string, value: string | Uint8Array): number {
    this.seq++;
    this.entries.set(key, { value: typeof value === 'string' ? new TextEncoder().encode(value) : value, revision: this.seq });
    return this.seq;
  }

  update(key: string, value: string | Uint8Array, revision: number): Promise<number> {
    if (this.broken) return Promise.reject(this.broken);
    this.updates++;
    const e = this.entries.get(key);
    if (this.rivals > 0 && e) {
      this.rivals--;
      e.revision = ++this.seq; // someone else's write landed first
    }
    if (!e || e.revision !== revision) return Promise.reject(new Error('wrong last sequence: ' + (e?.revision ?? 0)));
    const seq = this.write(key, value);
    if (this.lostReplies > 0) {
      this.lostReplies--;
      return Promise.reject(new Error('TIMEOUT'));
    }
    return Promise.resolve(seq);
  }

  create(key: string, value: string | Uint8Array): Promise<number> {
    if (this.broken) return Promise.reject(this.broken);
    if (this.entries.has(key)) return Promise.reject(new Error('wrong last sequence: key exists'));
    return Promise.resolve(this.write(key, value));
  }

  put(key: string, value: string | Uint8Array): Promise<number> {
    return Promise.resolve(this.write(key, value));
  }
}

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for: ${what}`);
    await pause(10);
  }
}

describe('NatsBudgetStore under compare-and-set contention (KV stand-in)', function () {
  this.timeout(20_000);
  const T0 = Date.parse('2031-03-12T12:00:00Z');
  const team: ChargeSubject = { team: 'payments', agent: 'bot', sub: 'alice', server: 'ledger', tool: 'query' };
  const config = parseBudgetConfig('budgets:\n  - { name: payments, scope: { team: payments }, limit: 10000, window: day }\n', 'budgets.yaml');
  const key = usageKey('payments', windowAt('day', 'UTC', T0).key);
  const LEASE = 500;
  const settings: NatsBudgetSettings = {
    ...DEFAULT_NATS_SETTINGS, url: 'nats://stand-in', lease: { fraction: 0.05, min: LEASE, max: LEASE, ttlMs: 30_000 }, syncIntervalMs: 100, timeoutMs: 1000,
  };
  // No status events: the connection never drops in these tests; only KV calls fail or conflict.
  const nc = { status: () => (async function* () { /* none */ })(), getServer: () => 'stand-in:4222' } as unknown as NatsConnection;
  const stores: NatsBudgetStore[] = [];
  afterEach(async () => { for (const s of stores.splice(0)) await s.close().catch(() => undefined); });

  async function open(kv: FakeKv, warnings: string[] = []): Promise<NatsBudgetStore> {
    const store = await NatsBudgetStore.over({ nc, kv: kv as unknown as KV, cfg: new FakeKv() as unknown as KV }, config.budgets, settings, {
      replicaId: 'me', clock: () => T0, logger: { warn: (_o, msg) => warnings.push(msg) },
    });
    stores.push(store);
    await store.prepare(config.budgets[0]!, windowAt('day', 'UTC', T0)); // a first call's Check
    return store;
  }

  it('a sync that loses every round keeps the store healthy and spends the held lease, never more; nothing is lost once a sync lands', async () => {
    const kv = new FakeKv();
    const warnings: string[] = [];
    const store = await open(kv, warnings);
    const gate = createBudgetGate(config, store, { clock: () => T0 });
    const lease = store.leaseOf('payments', windowAt('day', 'UTC', T0).key);
    assert.equal(lease?.amount, LEASE);

    kv.rivals = Number.POSITIVE_INFINITY; // every replica but this one gets its write in first
    let charged = 0;
    for (let i = 0; i < 1000 && gate.check(team, 10).exhausted === null; i++) { gate.charge(team, 10); charged += 10; }
    assert.equal(charged, LEASE, 'calls spent exactly the held lease');
    await until(() => store.contentionCount >= 1, 'the refill to give up');
    assert.equal(store.healthy, true, 'contention is not NATS being unreachable');
    assert.deepEqual(store.leaseOf('payments', windowAt('day', 'UTC', T0).key), lease, 'the lease held is kept as it was');
    const refused = gate.check(team, 10);
    assert.match(refused.reason ?? '', /renewing its share/);
    assert.doesNotMatch(refused.reason ?? '', /unreachable/);
    assert.equal(store.leaseContention.get('payments'), store.contentionCount);
    assert.ok(gate.metrics.leaseContention?.get('payments'), 'the gate hands the count to the metrics');
    assert.equal(warnings.filter((w) => /other replicas won every compare-and-set round/.test(w)).length, 1, 'warned once per episode');
    // The KV entry is as the last landed sync left it: the lease still committed for everyone else.
    assert.equal(kv.state(key).committed, LEASE);
    assert.equal(kv.state(key).reported, 0);

    // Ticks keep trying (and losing) without ever failing the store.
    const before = store.contentionCount;
    await until(() => store.contentionCount > before, 'a later tick to try again');
    assert.equal(store.healthy, true);

    kv.rivals = 0;
    await until(() => gate.check(team, 10).exhausted === null, 'a sync to land once the key is free');
    assert.equal(kv.state(key).reported, charged, 'the spending held back while crowded out is reported in full');
    await store.close();
    stores.splice(0);
    assert.equal(kv.state(key).reported, charged);
    assert.equal(kv.state(key).committed, charged, 'every lease given back');
  });

  it('a KV call that fails (not a conflict) still counts as NATS unreachable: budgets fail closed', async () => {
    const kv = new FakeKv();
    const store = await open(kv);
    const gate = createBudgetGate(config, store, { clock: () => T0 });
    kv.broken = new Error('TIMEOUT');
    for (let i = 0; i < 40 && gate.check(team, 10).exhausted === null; i++) gate.charge(team, 10);
    await until(() => !store.healthy, 'the failed sync to be noticed');
    assert.equal(store.contentionCount, 0);
    assert.match(gate.check(team, 1).reason ?? '', /is unreachable since .*\(TIMEOUT\).*fail closed/);
    kv.broken = null;
  });

  it('a used-up budget is re-read, not rewritten, every tick; a reset makes the replica take a lease again', async () => {
    const kv = new FakeKv();
    await kv.put(key, JSON.stringify({ used: 10_000, leases: {} }));
    const store = await open(kv);
    const gate = createBudgetGate(config, store, { clock: () => T0 });
    assert.match(gate.check(team, 1).reason ?? '', /is exhausted/);
    const [updates, gets] = [kv.updates, kv.gets];
    await pause(settings.syncIntervalMs * 6);
    for (let i = 0; i < 50; i++) gate.check(team, 1); // calls that find it used up do not write either
    assert.equal(kv.updates, updates, 'no compare-and-set while nothing is left');
    assert.ok(kv.gets - gets >= 1, `the key is still read every few ticks (${kv.gets - gets} reads)`);
    await kv.put(key, JSON.stringify({ used: 0, leases: {}, resets: 1 })); // tollgate budget reset
    await until(() => gate.check(team, 1).exhausted === null, 'a lease after the reset');
    assert.equal(store.leaseOf('payments', windowAt('day', 'UTC', T0).key)?.amount, LEASE);
  });

  it('a replica that holds a lease and spends nothing does not write, however many ticks pass', async () => {
    const kv = new FakeKv();
    // Time runs 50× fast: the 0.8 s below are 40 s, longer than lease.ttl.
    const p0 = performance.now();
    const clock = (): number => T0 + Math.round((performance.now() - p0) * 50);
    const store = await NatsBudgetStore.over({ nc, kv: kv as unknown as KV, cfg: new FakeKv() as unknown as KV }, config.budgets, settings, { replicaId: 'me', clock });
    stores.push(store);
    await store.prepare(config.budgets[0]!, windowAt('day', 'UTC', T0));
    const writes = kv.updates + 1; // the create
    await pause(settings.syncIntervalMs * 8);
    assert.equal(kv.updates + 1, writes, 'no renewals: a lease has nothing to renew');
    assert.equal(store.leaseOf('payments', windowAt('day', 'UTC', T0).key)?.amount, LEASE);
    const gate = createBudgetGate(config, store, { clock });
    assert.equal(gate.check(team, 10).exhausted, null, 'the lease is still good');
    gate.charge(team, 40);
    await until(() => kv.state(key).reported === 40, 'spending to be reported');
  });

  it('shrinks a lease to the fair share once more replicas hold leases and the budget runs short, and not before', async () => {
    const kv = new FakeKv();
    const store = await open(kv);
    const day = windowAt('day', 'UTC', T0).key;
    assert.equal(store.leaseOf('payments', day)?.amount, LEASE);
    const fair = 10_000 / (2 * 100);
    const others = async (tokens: number): Promise<void> => {
      // 99 other replicas hold leases (and have spent) this much, as the entry would show them.
      const e = kv.state(key);
      await kv.put(key, JSON.stringify({ v: 2, epoch: e.epoch, committed: LEASE + tokens, reported: 0, holders: 100 }));
    };
    await others(99 * 40);
    await pause(settings.syncIntervalMs * 8);
    assert.equal(store.leaseOf('payments', day)?.amount, LEASE, 'with room to spare the lease is left alone');
    await others(9450);
    await until(() => store.leaseOf('payments', day)?.amount === fair, 'the lease to shrink to the fair share');
    assert.equal(kv.state(key).committed, 9450 + fair, 'the rest went back');
    assert.equal(kv.state(key).holders, 100);
  });

  it('a write whose reply is lost (it landed) is followed by one that commits at least what was spent, never less', async () => {
    const kv = new FakeKv();
    const store = await open(kv);
    const gate = createBudgetGate(config, store, { clock: () => T0 });
    kv.lostReplies = 1;
    gate.charge(team, 300);
    await until(() => !store.healthy, 'the unanswered write to be noticed');
    assert.equal(store.leaseOf('payments', windowAt('day', 'UTC', T0).key), null, 'the lease it may have given back is not spent again');
    assert.match(gate.check(team, 1).reason ?? '', /unreachable.*TIMEOUT/);
    gate.charge(team, 50); // a response of a call allowed before
    await until(() => store.healthy && gate.check(team, 10).exhausted === null, 'the next write to land');
    await store.close();
    stores.splice(0);
    const final = kv.state(key);
    assert.ok(final.committed >= 350, `committed ${final.committed} covers the 350 spent`);
    assert.ok(final.committed <= 350 + LEASE, `and wastes at most one lease (${final.committed})`);
  });

  it('a give-back at close outlasts more conflicts than a renewal would try, and reports everything', async () => {
    const kv = new FakeKv();
    const store = await open(kv);
    const gate = createBudgetGate(config, store, { clock: () => T0 });
    gate.charge(team, 120);
    const updatesBefore = kv.updates;
    kv.rivals = MAX_CAS_ROUNDS + 8;
    await store.close();
    stores.splice(0);
    assert.equal(kv.updates - updatesBefore, MAX_CAS_ROUNDS + 9, 'lost every contended round, then landed');
    assert.equal(store.contentionCount, 0);
    assert.equal(kv.state(key).reported, 120);
    assert.equal(kv.state(key).committed, 120);
  });
});

describe('NatsBudgetStore leases on first use (KV stand-in)', function () {
  this.timeout(20_000);
  const T0 = Date.parse('2031-03-12T12:00:00Z');
  const config = parseBudgetConfig([
    'budgets:',
    '  - { name: payments, scope: { team: payments }, limit: 10000, window: day }',
    '  - { name: support, scope: { team: support }, limit: 10000, window: day }',
    '  - { name: ledger-writes, scope: { team: payments, tool: write }, limit: 10000, window: day }',
  ].join('\n') + '\n', 'budgets.yaml');
  const day = windowAt('day', 'UTC', T0).key;
  const settings: NatsBudgetSettings = {
    ...DEFAULT_NATS_SETTINGS, url: 'nats://stand-in', lease: { fraction: 0.05, min: 500, max: 500, ttlMs: 30_000 }, syncIntervalMs: 100, timeoutMs: 1000,
  };
  const nc = { status: () => (async function* () { /* none */ })(), getServer: () => 'stand-in:4222' } as unknown as NatsConnection;
  const payments: ChargeSubject = { team: 'payments', agent: 'bot', sub: 'alice', server: 'ledger', tool: null };

  it('leases only the budgets a caller may charge, when it first calls; the next calls await nothing', async () => {
    const kv = new FakeKv();
    const store = await NatsBudgetStore.over({ nc, kv: kv as unknown as KV, cfg: new FakeKv() as unknown as KV }, config.budgets, settings, { replicaId: 'me', clock: () => T0 });
    try {
      const gate = createBudgetGate(config, store, { clock: () => T0 });
      await pause(settings.syncIntervalMs * 3);
      assert.equal(kv.updates + kv.gets, 0, 'nothing leased before a call');
      const first = gate.prepare(payments);
      assert.ok(first, 'the first call waits for its lease');
      await first;
      // Both budgets of the payments team (the tool-scoped one too: the call may be to `write`).
      assert.equal(store.leaseOf('payments', day)?.amount, 500);
      assert.equal(store.leaseOf('ledger-writes', day)?.amount, 500);
      assert.equal(store.leaseOf('support', day), null, 'no lease on a budget no caller here charges');
      assert.equal(kv.state(usageKey('support', day)).committed, 0);
      assert.equal(gate.prepare(payments), null, 'later calls find it ready');
      assert.equal(gate.check({ ...payments, tool: 'read' }, 10).exhausted, null);
    } finally {
      await store.close();
    }
  });

  it('a refill just after the first call does not read that call as a rate that asks for the whole budget', async () => {
    const kv = new FakeKv();
    const wide = { ...settings, syncIntervalMs: 1000, lease: { ...settings.lease, max: 50_000 } };
    const store = await NatsBudgetStore.over({ nc, kv: kv as unknown as KV, cfg: new FakeKv() as unknown as KV }, config.budgets, wide, { replicaId: 'me', clock: () => T0 });
    try {
      const gate = createBudgetGate(config, store, { clock: () => T0 });
      await gate.prepare(payments);
      gate.charge({ ...payments, tool: 'read' }, 400); // the first call's arguments and result, a millisecond later
      await until(() => kv.state(usageKey('payments', day)).reported === 400, 'the refill');
      const lease = store.leaseOf('payments', day)!.amount;
      assert.ok(lease <= 1000, `a lease of ${lease} of 10000 after one call`);
    } finally {
      await store.close();
    }
  });

  it('gives a lease back once its budget has gone unused for idleMs, and leases it again on the next call', async () => {
    const kv = new FakeKv();
    const store = await NatsBudgetStore.over({ nc, kv: kv as unknown as KV, cfg: new FakeKv() as unknown as KV }, config.budgets, settings, { replicaId: 'me', clock: () => T0, idleMs: 400 });
    try {
      const gate = createBudgetGate(config, store, { clock: () => T0 });
      await gate.prepare(payments);
      gate.charge({ ...payments, tool: 'read' }, 70);
      const key = usageKey('payments', day);
      await until(() => store.leaseOf('payments', day) === null, 'the idle lease to go back');
      assert.equal(kv.state(key).committed, 70, 'the unspent rest went back; the spending was reported');
      assert.equal(kv.state(key).reported, 70);
      assert.equal(kv.state(key).holders, 0);
      await gate.prepare(payments);
      assert.equal(store.leaseOf('payments', day)?.amount, 500);
    } finally {
      await store.close();
    }
  });
});
