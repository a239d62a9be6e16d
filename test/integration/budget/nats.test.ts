import { strict as assert } from 'node:assert';
import { connect } from '@nats-io/transport-node';
import { budgetCommand } from '../../../src/cli/budget.js';
import { DEFAULT_NATS_SETTINGS, parseBudgetConfig, type BudgetConfig, type NatsBudgetSettings, type OnNatsUnavailable } from '../../../src/budget/config.js';
import { createBudgetGate, type TollgateBudgetGate } from '../../../src/budget/gate.js';
import type { UsageState } from '../../../src/budget/lease.js';
import { createBudgetBuckets, legacyUsageKey, NatsBudgetStore, usageKey } from '../../../src/budget/nats-store.js';
import { openBudgetGate } from '../../../src/budget/open.js';
import { windowAt } from '../../../src/budget/window.js';
import { NatsServer } from '../../../src/nats/server.js';
import { pause, readEntry, sizes, T0, team } from './support.js';

/** One clock for every replica, moved by the test: windows roll when it says. */
class FakeClock {
  constructor(public now: number) {}
  readonly read = (): number => this.now;
}

/** Waits for a condition driven by background work (NATS round trips); fails after `ms`. */
async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 15000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for: ${what}`);
    await pause(20);
  }
}


describe('budgets shared through NATS JetStream KV', function () {
  this.timeout(60000);
  let nats: NatsServer;
  const open: Array<{ gate: TollgateBudgetGate; store?: NatsBudgetStore }> = [];

  before(async () => { nats = await NatsServer.start(); });
  after(async () => { await nats.dispose(); });
  afterEach(async () => {
    for (const r of open.splice(0)) await r.gate.close().catch(() => undefined);
    if (!nats.running) await nats.restart();
  });

  let bucketSeq = 0;
  function settingsFor(over: Partial<NatsBudgetSettings> = {}): NatsBudgetSettings {
    bucketSeq++;
    return {
      ...DEFAULT_NATS_SETTINGS, url: nats.url, bucket: `usage_${bucketSeq}`, configBucket: `config_${bucketSeq}`,
      lease: { fraction: 0.01, min: 100, max: 400, ttlMs: 30_000 }, syncIntervalMs: 100, timeoutMs: 1000, ...over,
    };
  }

  async function replica(config: BudgetConfig, settings: NatsBudgetSettings, id: string, clock: FakeClock): Promise<{ gate: TollgateBudgetGate; store: NatsBudgetStore }> {
    const store = await NatsBudgetStore.open(config.budgets, settings, null, { replicaId: id, clock: clock.read });
    const r = { gate: createBudgetGate(config, store, { clock: clock.read }), store };
    open.push(r);
    await r.gate.prepare(team); // as Check does before a caller's first call
    return r;
  }

  function teamBudget(limit: number, window = 'day'): BudgetConfig {
    return parseBudgetConfig(`budgets:\n  - { name: payments, scope: { team: payments }, limit: ${limit}, window: ${window} }\n`, 'budgets.yaml');
  }

  it('carries a window\'s usage over from the old key (used plus leases still listed), says so, and writes only the new key', async () => {
    const config = teamBudget(10_000);
    const settings = settingsFor();
    const day = windowAt('day', 'UTC', T0).key;
    const nc = await connect({ servers: settings.url });
    try {
      const { kv } = await createBudgetBuckets(nc, settings);
      // What a replica of the previous version left: 700 reported, a lease of 300 still out.
      await kv.put(legacyUsageKey('payments', day), JSON.stringify({ used: 700, leases: { old: { id: 'x', amount: 300, expiresAt: T0 + 60_000 } } }));
    } finally {
      await nc.close();
    }
    const warnings: Array<Record<string, unknown>> = [];
    const clock = new FakeClock(T0);
    const store = await NatsBudgetStore.open(config.budgets, settings, null, { replicaId: 'new', clock: clock.read, logger: { warn: (o) => warnings.push(o) } });
    const gate = createBudgetGate(config, store, { clock: clock.read });
    open.push({ gate, store });
    await gate.prepare(team);
    assert.equal(usageKey('payments', day), `w._.payments.${day}`);
    const fresh = await readEntry(settings, usageKey('payments', day));
    assert.equal(fresh.reported, 1000, 'the new key starts from what was used and leased under the old one, not from zero');
    assert.deepEqual(warnings.map((w) => [w.from, w.to, w.tokens]), [[`w.payments.${day}`, `w._.payments.${day}`, 1000]]);
    const c = gate.check(team, 50);
    assert.equal(c.exhausted, null);
    assert.ok(c.entries[0]!.used >= 1000, `the gate sees the carried usage: ${c.entries[0]!.used}`);
    gate.charge(team, 50);
    await gate.close();
    open.splice(0);
    assert.equal((await readEntry(settings, usageKey('payments', day))).committed, 1050);
    assert.equal((await readEntry(settings, legacyUsageKey('payments', day))).reported, 700, 'the old key is read, never written');
  });

  it('three replicas under concurrent load end within limit + one response per in-flight call, and never allow after exhaustion', async () => {
    const LIMIT = 30_000;
    const WORKERS = 4; // concurrent calls in flight per replica
    const MAX_RESPONSE = 60;
    const config = teamBudget(LIMIT);
    const settings = settingsFor();
    const clock = new FakeClock(T0);
    const replicas = await Promise.all(['r1', 'r2', 'r3'].map((id) => replica(config, settings, id, clock)));

    let charged = 0;
    const allowed = [0, 0, 0];
    const transientDenials = [0, 0, 0];
    // done: the last answer was a lasting refusal (not "renewing"); exhausted: nothing left at all.
    const done = [false, false, false];
    const exhausted = [false, false, false];
    let allowedAfterExhausted = 0;

    const worker = async (ri: number, seed: number): Promise<void> => {
      const rnd = sizes(seed);
      const { gate } = replicas[ri]!;
      for (let spins = 0; spins < 200_000; spins++) {
        if (done.every(Boolean)) return;
        const req = 5 + (rnd() % 16);
        const r = gate.check(team, req);
        if (r.exhausted) {
          if (r.reason!.includes('renewing')) transientDenials[ri]!++;
          else done[ri] = true;
          if (r.reason!.includes('is exhausted')) exhausted[ri] = true;
          await pause(1);
          continue;
        }
        if (exhausted[ri]) allowedAfterExhausted++;
        done[ri] = false;
        allowed[ri]!++;
        gate.charge(team, req);
        charged += req;
        // The MCP server answers later; its result is charged when ext_proc sees it.
        await pause(rnd() % 2);
        const resp = 10 + (rnd() % (MAX_RESPONSE - 9));
        gate.charge(team, resp);
        charged += resp;
      }
    };
    await Promise.all(replicas.flatMap((_, ri) => Array.from({ length: WORKERS }, (_, w) => worker(ri, ri * 100 + w + 1))));
    assert.ok(done.every(Boolean), 'every replica reached the end of the budget');
    assert.ok(exhausted.some(Boolean), 'the budget was seen exhausted');
    assert.equal(allowedAfterExhausted, 0, 'no replica allowed a call after it saw the budget exhausted');
    for (const n of allowed) assert.ok(n > 0, `every replica served calls: ${allowed.join(', ')}`);

    // Shut down cleanly: every replica reports its spending and returns its lease.
    for (const r of open.splice(0)) await r.gate.close();
    const entry = await readEntry(settings, usageKey('payments', windowAt('day', 'UTC', T0).key));
    assert.equal(entry.reported, charged, 'the shared state accounts for every token charged');
    assert.equal(entry.committed, charged, 'all leases were given back');
    const bound = 3 * WORKERS * MAX_RESPONSE;
    assert.ok(charged <= LIMIT + bound, `charged ${charged} ≤ limit ${LIMIT} + bound ${bound}`);
    // Stranded capacity is tiny: whatever is left is smaller than a call's arguments on each replica.
    assert.ok(charged >= LIMIT - 3 * 20, `charged ${charged} uses the budget up`);
    console.log(`      (charged ${charged} of ${LIMIT}; overshoot ${Math.max(0, charged - LIMIT)} ≤ ${bound}; calls ${allowed.join('/')}; lease-renewal denials ${transientDenials.join('/')})`);

    // A replica that starts now sees the budget exhausted.
    const late = await replica(config, settings, 'r4', clock);
    const r = late.gate.check(team, 1);
    assert.equal(r.exhausted?.name, 'payments');
    assert.match(r.reason!, /exhausted/);
  });

  it('openBudgetGate picks shared state when the budgets file has a nats section, and refuses to start without NATS', async () => {
    const config = parseBudgetConfig(`budgets:\n  - { name: payments, scope: { team: payments }, limit: 1000, window: day }\nnats: { url: "${nats.url}", bucket: opened_usage, configBucket: opened_config }\n`, 'budgets.yaml');
    const opened = await openBudgetGate(config, { stateDir: '/nonexistent', replicaId: 'opened' });
    open.push({ gate: opened.gate });
    assert.equal(opened.mode, 'nats');
    await opened.gate.prepare(team);
    assert.equal(opened.gate.check(team, 10).exhausted, null);
    const unreachable = parseBudgetConfig('budgets: []\nnats: { url: "nats://127.0.0.1:1" }\n', 'budgets.yaml');
    await assert.rejects(openBudgetGate(unreachable, { stateDir: '/nonexistent' }), /cannot reach NATS at nats:\/\/127\.0\.0\.1:1 for shared budget state: .*Start NATS/);
  });

  it('grows a lease for a call larger than the usual lease', async () => {
    const config = teamBudget(30_000);
    const settings = settingsFor(); // leases of at most 400 tokens
    const { gate, store } = await replica(config, settings, 'big', new FakeClock(T0));
    const key = windowAt('day', 'UTC', T0).key;
    assert.ok(store.leaseOf('payments', key)!.amount <= 400);
    const first = gate.check(team, 1500);
    assert.equal(first.exhausted?.name, 'payments');
    assert.match(first.reason!, /renewing its share/);
    await until(() => gate.check(team, 1500).exhausted === null, 'a lease big enough for the call');
    gate.charge(team, 1500);
    assert.equal(gate.check(team, 0).entries[0]!.used >= 1500, true);
  });

  it('a replica killed mid-load (leases not returned) loses at most its lease', async () => {
    const LIMIT = 6000;
    const LEASE = 500;
    const config = teamBudget(LIMIT);
    const settings = settingsFor({ lease: { fraction: 1, min: LEASE, max: LEASE, ttlMs: 30_000 } });
    const clock = new FakeClock(T0);
    const [a, b, victim] = await Promise.all(['a', 'b', 'victim'].map((id) => replica(config, settings, id, clock)));
    const key = usageKey('payments', windowAt('day', 'UTC', T0).key);

    // The victim serves a few calls and dies before reporting them.
    let victimCharged = 0;
    for (let i = 0; i < 4; i++) {
      assert.equal(victim!.gate.check(team, 0).exhausted, null);
      victim!.gate.charge(team, 30);
      victimCharged += 30;
    }
    const victimLease = victim!.store.leaseOf('payments', windowAt('day', 'UTC', T0).key);
    assert.equal(victimLease?.amount, LEASE);
    await victim!.store.abandon();
    open.splice(open.indexOf(victim!), 1);

    // The survivors use up everything else (calls without arguments, results of 10-60 tokens).
    let survivorsCharged = 0;
    const run = async (g: TollgateBudgetGate, seed: number): Promise<void> => {
      const rnd = sizes(seed);
      for (let misses = 0; misses < 50;) {
        const r = g.check(team, 0);
        if (r.exhausted) { if (!r.reason!.includes('renewing')) misses++; await pause(5); continue; }
        misses = 0;
        const n = 10 + (rnd() % 51);
        g.charge(team, n);
        survivorsCharged += n;
        await pause(0);
      }
    };
    await Promise.all([run(a!.gate, 1), run(b!.gate, 2)]);
    // The dead lease is still reserved, so the survivors stopped short of it.
    assert.ok(survivorsCharged <= LIMIT - LEASE + 2 * 60, `survivors ${survivorsCharged}`);
    // Nobody gives it back or writes it off: it stays committed, as spent, with no wait for expiry.
    for (const r of open.splice(0)) await r.gate.close();
    const entry = await readEntry(settings, key);
    assert.equal(entry.reported, survivorsCharged);
    assert.equal(entry.committed, survivorsCharged + LEASE, 'the dead lease counts as fully spent');
    const actuallyServed = survivorsCharged + victimCharged;
    const lost = LIMIT - actuallyServed;
    assert.ok(lost <= LEASE, `capacity lost to the crash (${lost}) is at most the dead replica's lease (${LEASE})`);
    assert.ok(actuallyServed <= LIMIT + 2 * 60, 'and the budget never overshoots because of it');
  });

  for (const mode of ['fail-closed', 'use-leases-until-expiry'] as OnNatsUnavailable[]) {
    it(`NATS unreachable, ${mode}`, async () => {
      const config = teamBudget(100_000);
      const settings = settingsFor({ onNatsUnavailable: mode, lease: { fraction: 0.01, min: 1000, max: 1000, ttlMs: 30_000 } });
      const clock = new FakeClock(T0);
      const { gate, store } = await replica(config, settings, `solo-${mode}`, clock);
      assert.equal(gate.check(team, 10).exhausted, null);
      gate.charge(team, 10);

      await nats.stop();
      await until(() => !store.healthy, 'the replica to notice NATS is gone');
      if (mode === 'fail-closed') {
        const r = gate.check(team, 10);
        assert.equal(r.exhausted?.name, 'payments');
        assert.match(r.reason!, /shared budget state \(NATS at nats:\/\/127\.0\.0\.1:\d+\) is unreachable since .*fail closed \(nats.onNatsUnavailable: fail-closed\)/);
      } else {
        // Keeps serving from its lease while the lease lasts ...
        let served = 0;
        for (let i = 0; i < 20; i++) {
          assert.equal(gate.check(team, 10).exhausted, null);
          gate.charge(team, 10);
          served += 10;
        }
        assert.equal(served, 200);
        // ... and not one call past its expiry.
        clock.now += 30_001;
        const r = gate.check(team, 10);
        assert.equal(r.exhausted?.name, 'payments');
        assert.match(r.reason!, /unreachable since .* let its lease expire at .*use-leases-until-expiry/);
      }

      await nats.restart();
      await until(() => store.healthy && gate.check(team, 10).exhausted === null, 'service to resume once NATS is back');
      await gate.close();
      open.splice(0);
      const entry = await readEntry(settings, usageKey('payments', windowAt('day', 'UTC', T0).key));
      // Nothing spent during the outage is lost: reported exactly, or written off with its lease.
      assert.ok(entry.reported >= (mode === 'fail-closed' ? 10 : 210), `used ${entry.reported}`);
      assert.equal(entry.committed, entry.reported);
    });
  }

  it('takes the next window\'s lease before rollover, and voids the old window\'s lease after it', async () => {
    const config = teamBudget(10_000, 'hour');
    const settings = settingsFor();
    const clock = new FakeClock(Date.parse('2031-03-12T12:59:55.000Z'));
    const { gate, store } = await replica(config, settings, 'roll', clock);
    gate.charge(team, 40);
    await until(() => store.leaseOf('payments', '2031-03-12T13Z') !== null, 'the next hour\'s lease to be taken in advance');
    clock.now = Date.parse('2031-03-12T13:00:00.000Z');
    const r = gate.check(team, 5);
    assert.equal(r.exhausted, null, 'the first call of the new hour finds a lease waiting');
    assert.equal(r.entries[0]!.used, 0);
    assert.equal(r.entries[0]!.resets_at, '2031-03-12T14:00:00.000Z');
    gate.charge(team, 5);
    let old: UsageState | null = null;
    await until(async () => { old = await readEntry(settings, usageKey('payments', '2031-03-12T12Z')); return old.committed === old.reported; }, 'the old hour\'s lease to be returned');
    old = old!;
    assert.equal(old.reported, 40, 'the old hour keeps what was spent in it');
    await gate.close();
    open.splice(0);
    assert.equal((await readEntry(settings, usageKey('payments', '2031-03-12T13Z'))).reported, 5);
  });

  it('tollgate budget status / set / reset work against NATS, and replicas follow', async () => {
    const config = teamBudget(1000);
    const settings = settingsFor();
    const { gate } = await replica(config, settings, 'cli', new FakeClock(Date.now()));
    gate.charge(team, 1000);
    assert.equal(gate.check(team, 1).exhausted?.name, 'payments');
    const orig = process.stdout.write.bind(process.stdout);
    let out = '';
    process.stdout.write = ((c: string | Uint8Array): boolean => { out += c.toString(); return true; }) as typeof process.stdout.write;
    const cli = async (...argv: string[]): Promise<string> => {
      out = '';
      assert.equal(await budgetCommand.run([...argv, '--nats', settings.url, '--bucket', settings.bucket, '--config-bucket', settings.configBucket]), 0);
      return out;
    };
    try {
      await cli('set', 'payments', '--limit', '5000');
      await until(() => gate.check(team, 1).exhausted === null, 'the replica to apply the new limit');
      assert.equal(gate.check(team, 1).entries[0]!.limit, 5000);
      await until(async () => (JSON.parse(await cli('status', '--json')).budgets[0].used as number) === 1000, 'status to show the reported usage');
      const rows = JSON.parse(await cli('status', '--json', '--team', 'payments')).budgets as Array<{ name: string; limit: number; declaredLimit: number; used: number }>;
      assert.deepEqual(rows.map((x) => [x.name, x.limit, x.declaredLimit, x.used]), [['payments', 5000, 1000, 1000]]);
      await cli('reset', 'payments');
      await until(() => gate.check(team, 1).entries[0]!.used < 1000, 'the replica to see the reset');
    } finally {
      process.stdout.write = orig;
    }
  });
});
