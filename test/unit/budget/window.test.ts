import { strict as assert } from 'node:assert';
import { nextWindow, startOfLocalDate, WindowCache, windowAt, type WindowKind } from '../../../src/budget/window.js';

const at = (iso: string): number => Date.parse(iso);
const iso = (t: number): string => new Date(t).toISOString();

describe('budget windows', () => {
  it('hour windows are UTC clock hours, back to back', () => {
    const w = windowAt('hour', 'Europe/Berlin', at('2025-03-30T01:59:59.999Z'));
    assert.equal(w.key, '2025-03-30T01Z');
    assert.equal(iso(w.start), '2025-03-30T01:00:00.000Z');
    assert.equal(iso(w.end), '2025-03-30T02:00:00.000Z');
    assert.equal(windowAt('hour', 'UTC', w.end).key, '2025-03-30T02Z');
  });

  it('a calendar day in Europe/Berlin is 23 hours on the spring-forward day and 25 on the fall-back day', () => {
    const spring = windowAt('day', 'Europe/Berlin', at('2025-03-30T12:00:00Z'));
    assert.equal(spring.key, '2025-03-30');
    assert.equal(iso(spring.start), '2025-03-29T23:00:00.000Z'); // local midnight, CET
    assert.equal(iso(spring.end), '2025-03-30T22:00:00.000Z'); // next local midnight, CEST
    assert.equal((spring.end - spring.start) / 3_600_000, 23);
    const autumn = windowAt('day', 'Europe/Berlin', at('2025-10-26T12:00:00Z'));
    assert.equal((autumn.end - autumn.start) / 3_600_000, 25);
  });

  it('a day whose midnight does not exist starts when the clocks jump (America/Santiago)', () => {
    // Chile moved clocks from 24:00 to 01:00 on 2024-09-08: that day begins at 01:00 local (-03).
    const w = windowAt('day', 'America/Santiago', at('2024-09-08T12:00:00Z'));
    assert.equal(w.key, '2024-09-08');
    assert.equal(iso(w.start), '2024-09-08T04:00:00.000Z');
    assert.equal(windowAt('day', 'America/Santiago', w.start - 1).key, '2024-09-07');
  });

  it('a skipped calendar day leaves no gap (Pacific/Apia skipped 2011-12-30)', () => {
    const w = windowAt('day', 'Pacific/Apia', at('2011-12-29T12:00:00Z'));
    const n = nextWindow(w, 'Pacific/Apia');
    assert.equal(n.key, '2011-12-31');
    assert.equal(n.start, w.end);
  });

  it('calendar month in a time zone rolls over at local midnight of the 1st, exactly once', () => {
    // Injected clock: walk across the March→April 2025 rollover in Berlin (after the DST switch).
    const tz = 'Europe/Berlin';
    const march = windowAt('month', tz, at('2025-03-15T00:00:00Z'));
    assert.equal(march.key, '2025-03');
    assert.equal(iso(march.start), '2025-02-28T23:00:00.000Z');
    assert.equal(iso(march.end), '2025-03-31T22:00:00.000Z');
    const clock = { now: march.end - 1 };
    assert.equal(windowAt('month', tz, clock.now).key, '2025-03');
    clock.now += 1;
    const april = windowAt('month', tz, clock.now);
    assert.equal(april.key, '2025-04');
    assert.equal(april.start, march.end);
    // New Year rolls over in the zone, not in UTC.
    const dec = windowAt('month', 'America/New_York', at('2025-12-31T23:30:00Z'));
    assert.equal(dec.key, '2025-12');
    assert.equal(iso(dec.end), '2026-01-01T05:00:00.000Z');
    assert.equal(windowAt('month', 'America/New_York', dec.end).key, '2026-01');
  });

  it('zones with half-hour offsets start their days off the hour', () => {
    assert.equal(iso(windowAt('day', 'Asia/Kolkata', at('2025-03-29T12:00:00Z')).start), '2025-03-28T18:30:00.000Z');
    assert.equal(startOfLocalDate(Date.UTC(2025, 2, 29), 'Asia/Kolkata'), at('2025-03-28T18:30:00Z'));
  });

  for (const tz of ['Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'America/Santiago', 'America/Havana']) {
    for (const kind of ['day', 'month'] as WindowKind[]) {
      it(`${kind} windows in ${tz} tile two years without gap or overlap`, () => {
        let w = windowAt(kind, tz, at('2024-01-01T00:00:00Z'));
        const stop = at('2026-01-01T00:00:00Z');
        let count = 0;
        while (w.start < stop) {
          const n = nextWindow(w, tz);
          assert.equal(n.start, w.end, `${w.key} → ${n.key}`);
          assert.ok(n.key > w.key);
          assert.equal(windowAt(kind, tz, w.start).key, w.key);
          assert.equal(windowAt(kind, tz, w.end - 1).key, w.key);
          w = n;
          count++;
        }
        assert.ok(count >= (kind === 'day' ? 730 : 24));
      });
    }
  }

  it('the window cache follows an injected clock forwards and backwards', () => {
    const cache = new WindowCache();
    const a = cache.get('day', 'UTC', at('2025-05-01T10:00:00Z'));
    assert.equal(cache.get('day', 'UTC', at('2025-05-01T23:59:59Z')), a);
    assert.equal(cache.get('day', 'UTC', at('2025-05-02T00:00:00Z')).key, '2025-05-02');
    assert.equal(cache.get('day', 'UTC', at('2025-04-30T00:00:00Z')).key, '2025-04-30');
    assert.equal(cache.get('day', 'Asia/Tokyo', at('2025-04-30T20:00:00Z')).key, '2025-05-01');
  });
});
