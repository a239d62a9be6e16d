import { strict as assert } from 'node:assert';
import {
  budgetLimit, budgetSpecs, checkPlan, DEFAULT_PLAN, effectiveCallRate, overshootBound, parseCounts, parseRange, PlanError, poissonGapMs,
  seededRandom, sidecarsCharging, splitRanges, teamsOf, uniformInt, type TrafficPlan,
} from '../../../bench/nats-scale/plan.js';
import { refusalKind } from '../../../bench/nats-scale/refusals.js';
import { formatResults, worstOvershoot } from '../../../bench/nats-scale/report.js';
import { cpuPercent, summarize } from '../../../bench/nats-scale/stats.js';
import type { ScaleResult } from '../../../bench/nats-scale/types.js';

const plan = (o: Partial<TrafficPlan> = {}): TrafficPlan => ({ ...DEFAULT_PLAN, sidecars: 10, ...o });

describe('bench-nats-scale: traffic plan', () => {
  it('spreads teams over sidecars so every budget has the same number of sidecars charging it', () => {
    assert.deepEqual(teamsOf(0, { budgets: 4, teamsPerSidecar: 2 }), [0, 1]);
    assert.deepEqual(teamsOf(3, { budgets: 4, teamsPerSidecar: 2 }), [3, 0]);
    const p = plan({ sidecars: 100 });
    for (let t = 0; t < p.budgets; t++) assert.equal(sidecarsCharging(t, p), 50);
  });

  it('sets limits so that budgets run out at exhaustAt of the run at the planned rate', () => {
    const p = plan({ sidecars: 8, budgets: 2, teamsPerSidecar: 1, callsPerSec: 2, callMs: [0, 0], argsTokens: [100, 100], resultTokens: [900, 900], trafficSec: 10, exhaustAt: 0.5 });
    assert.equal(effectiveCallRate(p), 2);
    // 4 sidecars on each budget × 2 calls/s × 1000 tokens × 5 s.
    assert.equal(budgetLimit(0, p), 40_000);
    // Calls in flight slow a sidecar down: a 500 ms call after a 500 ms mean gap is one call a second.
    assert.equal(effectiveCallRate({ callsPerSec: 2, callMs: [500, 500] }), 1);
    const specs = budgetSpecs(['a', 'b'], p);
    assert.deepEqual(specs.map((s) => [s.name, s.scope, s.limit, s.action]), [['a', { team: 'team-0' }, 40_000, 'deny'], ['b', { team: 'team-1' }, 40_000, 'deny']]);
  });

  it('states the overshoot bound of docs/budgets.md: calls in flight × the largest result', () => {
    assert.equal(overshootBound(50, 2000), 100_000);
    assert.equal(overshootBound(3, 57, 4), 684);
  });

  it('splits sidecars into contiguous, non-empty worker ranges covering all of them', () => {
    assert.deepEqual(splitRanges(10, 3), [{ from: 0, to: 3 }, { from: 3, to: 6 }, { from: 6, to: 10 }]);
    assert.deepEqual(splitRanges(2, 4), [{ from: 0, to: 1 }, { from: 1, to: 2 }]);
    const r = splitRanges(1000, 4);
    assert.equal(r.reduce((a, x) => a + x.to - x.from, 0), 1000);
  });

  it('draws the same traffic from the same seed, Poisson gaps with the planned mean', () => {
    const a = seededRandom(7);
    const b = seededRandom(7);
    const xs = Array.from({ length: 5 }, () => a());
    assert.deepEqual(xs, Array.from({ length: 5 }, () => b()));
    assert.notDeepEqual(xs, Array.from({ length: 5 }, seededRandom(8)));
    const rand = seededRandom(1);
    let sum = 0;
    for (let i = 0; i < 20_000; i++) sum += poissonGapMs(rand, 4);
    assert.ok(Math.abs(sum / 20_000 - 250) < 10, `mean gap ${sum / 20_000}`);
    for (let i = 0; i < 1000; i++) {
      const v = uniformInt(rand, [20, 25]);
      assert.ok(v >= 20 && v <= 25 && Number.isInteger(v));
    }
  });

  it('refuses plans and flags that cannot run, naming the field', () => {
    assert.throws(() => checkPlan(plan({ sidecars: 0 })), /sidecars must be a whole number from 1/);
    assert.throws(() => checkPlan(plan({ teamsPerSidecar: 5, budgets: 4 })), /teams per sidecar/);
    assert.throws(() => checkPlan(plan({ callsPerSec: 0 })), /calls per second/);
    assert.throws(() => checkPlan(plan({ resultTokens: [10, 5] })), /result tokens/);
    assert.deepEqual(parseRange('50-2000', '--result-tokens'), [50, 2000]);
    assert.deepEqual(parseRange('7', 'x'), [7, 7]);
    assert.throws(() => parseRange('2000-50', '--result-tokens'), PlanError);
    assert.throws(() => parseRange('a-b', '--result-tokens'), /MIN-MAX/);
    assert.deepEqual(parseCounts('10, 100,1000'), [10, 100, 1000]);
    assert.throws(() => parseCounts(''), /at least one/);
    assert.throws(() => parseCounts('10,0'), /not a sidecar count/);
  });
});

describe('bench-nats-scale: statistics and refusals', () => {
  it('summarizes with nearest-rank percentiles and says "none" as NaN, not 0', () => {
    const s = summarize(Array.from({ length: 100 }, (_, i) => 100 - i));
    assert.deepEqual(s, { n: 100, p50: 50, p99: 99, max: 100 });
    assert.ok(Number.isNaN(summarize([]).p50));
    assert.equal(cpuPercent(10, 11.5, 3), 50);
  });

  it('tells a used-up budget from a replica between leases and from state counted unreachable', () => {
    assert.equal(refusalKind('budget "a" is exhausted: 10 of 10 tokens used this day; it resets at X'), 'exhausted');
    assert.equal(refusalKind('budget "a" has 4 of 10 tokens left this day, and this call\'s arguments alone count 9; it resets at X'), 'exhausted');
    assert.equal(refusalKind('budget "a": this authz replica is renewing its share of the budget (3 of 10 tokens left this day); retry in a moment'), 'renewing');
    assert.equal(refusalKind('budget "a": shared budget state (NATS at x) is unreachable since T (gave up), and budgets fail closed'), 'unreachable');
  });
});

describe('bench-nats-scale: report', () => {
  const result = (n: number): ScaleResult => ({
    sidecars: n, workers: 1, connections: n, trafficSec: 30,
    propagation: [{ revision: '2', publishMs: 40, toAll: { n, p50: 120, p99: 180, max: 190 }, reached: n }, { revision: '3', publishMs: 41, toAll: { n, p50: 150, p99: 170, max: 175 }, reached: n }],
    lease: { writesPerSec: 24.4, budgets: [
      { name: 'a', limit: 1000, used: 1100, committed: 1100, charged: 1100, overshoot: 100, bound: 2000, sidecars: 1 },
      { name: 'b', limit: 1000, used: 900, committed: 1250, charged: 1300, overshoot: 300, bound: 1000, sidecars: 1 },
    ], crowdedOut: 17 },
    log: { offered: 300, acked: 300, inStream: 300, perSec: 10, publishMs: { n: 300, p50: 2.25, p99: 11, max: 20 }, failures: 0 },
    calls: { allowed: 250, refused: { exhausted: 40, renewing: 6, unreachable: 4 } }, restarts: 2, startSec: 1.6,
    servers: [{ name: 'n1', cpuPercent: 2.4, rssMiB: 30, peakRssMiB: 35.2 }],
    streams: [{ name: 'TOLLGATE_DECISIONS', messages: 300, bytes: 3 * 2 ** 20, replicas: 3 }],
    simulator: { cpuPercent: 6, peakRssMiB: 80 }, warnings: [],
  });

  it('shows the worst publish, the worst overshoot against its bound, and where KV and charges disagree', () => {
    assert.equal(worstOvershoot(result(10)), '300 of 1000 (30%)');
    const text = formatResults([result(10)]);
    assert.match(text, /\| 10 \| 1 \/ 10 \| 150 \/ 180 \| 24 \| 300 of 1000 \(30%\) \| 10 \| 2\.3 \/ 11\.0 \| 2 \| 35 \| 6 \|/);
    assert.match(text, /\| 10 \| 2 \(2\) \| 10\/10, 10\/10 \| 300 \/ 300 \/ 300 \| 250 \/ 40, 6, 4 \| 17 \| no: 900 ≠ 1300 \| no: 1250 < 1300 \| 0 \|/);
    assert.match(text, /\| TOLLGATE_DECISIONS \| 300, 3\.0 \(R3\) \|/);
  });
});
