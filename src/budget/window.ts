/**
 * Budget windows: pure time arithmetic, no clock of its own (callers pass `now`).
 *
 * Windows are fixed and back to back: each one ends at the exact instant the next begins, so no
 * instant belongs to two windows (no double grant) or to none (no gap).
 * - hour:  a clock hour in UTC ([HH:00, HH+1:00)). Equal to the local clock hour in every zone
 *          whose offset is a whole number of hours; `timezone` is not consulted.
 * - day:   a calendar day in the budget's time zone, local midnight to local midnight (23 or 25
 *          hours long on DST change days).
 * - month: a calendar month in the budget's time zone, local midnight of the 1st to the next 1st.
 */

export type WindowKind = 'hour' | 'day' | 'month';
export const WINDOW_KINDS: readonly WindowKind[] = ['hour', 'day', 'month'];

export interface BudgetWindow {
  kind: WindowKind;
  /** Stable name of the window, usable in NATS KV keys: 2025-03-30T01Z, 2025-03-30, 2025-03. */
  key: string;
  /** First instant of the window (ms since the epoch, inclusive). */
  start: number;
  /** First instant of the next window (exclusive): when this budget resets. */
  end: number;
}

const HOUR_MS = 3_600_000;

interface LocalParts { y: number; mo: number; d: number; h: number; mi: number; s: number }

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric', era: 'short',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Throws a RangeError naming the zone when it is not an IANA time zone this runtime knows. */
export function assertTimeZone(timeZone: string): void {
  formatter(timeZone);
}

export function localParts(t: number, timeZone: string): LocalParts {
  const p: LocalParts = { y: 0, mo: 0, d: 0, h: 0, mi: 0, s: 0 };
  let bc = false;
  for (const part of formatter(timeZone).formatToParts(new Date(t))) {
    switch (part.type) {
      case 'year': p.y = Number(part.value); break;
      case 'month': p.mo = Number(part.value); break;
      case 'day': p.d = Number(part.value); break;
      case 'hour': p.h = Number(part.value); break;
      case 'minute': p.mi = Number(part.value); break;
      case 'second': p.s = Number(part.value); break;
      case 'era': bc = part.value.startsWith('B'); break;
      default: break;
    }
  }
  if (bc) p.y = 1 - p.y;
  return p;
}

/** The local calendar date of `t` as a UTC midnight timestamp: comparable, and easy to step. */
function localDate(t: number, timeZone: string): number {
  const p = localParts(t, timeZone);
  return Date.UTC(p.y, p.mo - 1, p.d);
}

/** Local wall-clock time of `t`, expressed as if it were UTC. */
function localWall(t: number, timeZone: string): number {
  const p = localParts(t, timeZone);
  return Date.UTC(p.y, p.mo - 1, p.d, p.h, p.mi, p.s);
}

/**
 * The first instant whose local date is `date` (a UTC-midnight stamp): local midnight normally,
 * the end of the DST gap in zones whose clocks skip midnight, the first of two midnights when
 * clocks fall back across it.
 */
export function startOfLocalDate(date: number, timeZone: string): number {
  // Fast path: the offset an hour either side of midnight gives candidate instants; one of them
  // is right unless a transition sits near midnight.
  const candidates: number[] = [];
  for (const probe of [date - 2 * HOUR_MS, date + 2 * HOUR_MS]) {
    const offset = localWall(probe, timeZone) - Math.floor(probe / 1000) * 1000;
    candidates.push(date - offset);
  }
  candidates.sort((a, b) => a - b);
  for (const c of candidates) {
    if (localDate(c, timeZone) === date && localDate(c - 1, timeZone) < date) return c;
  }
  // Slow path, only around odd transitions: the first instant at or past `date`, by bisection.
  let lo = date - 40 * HOUR_MS; // always before: no zone is ahead by 40 h
  let hi = date + 40 * HOUR_MS; // always at or after
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (localDate(mid, timeZone) >= date) hi = mid;
    else lo = mid;
  }
  return hi;
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

function yearKey(y: number): string {
  return y >= 0 ? pad(y, 4) : `-${pad(-y, 4)}`;
}

export function windowAt(kind: WindowKind, timeZone: string, now: number): BudgetWindow {
  switch (kind) {
    case 'hour': {
      const start = Math.floor(now / HOUR_MS) * HOUR_MS;
      const d = new Date(start);
      return { kind, key: `${yearKey(d.getUTCFullYear())}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}Z`, start, end: start + HOUR_MS };
    }
    case 'day': {
      const date = localDate(now, timeZone);
      const d = new Date(date);
      const next = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
      return {
        kind, key: `${yearKey(d.getUTCFullYear())}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`,
        start: startOfLocalDate(date, timeZone), end: startOfLocalDate(next, timeZone),
      };
    }
    case 'month': {
      const p = localParts(now, timeZone);
      const first = Date.UTC(p.y, p.mo - 1, 1);
      const next = Date.UTC(p.y, p.mo, 1);
      return { kind, key: `${yearKey(p.y)}-${pad(p.mo)}`, start: startOfLocalDate(first, timeZone), end: startOfLocalDate(next, timeZone) };
    }
  }
}

/** The window right after `w` (its start is exactly w.end). */
export function nextWindow(w: BudgetWindow, timeZone: string): BudgetWindow {
  return windowAt(w.kind, timeZone, w.end);
}

/**
 * Remembers the current window per (kind, zone): the Check path asks for it on every call, and it
 * only changes at rollover. The cache is keyed by the time, not trusted across it, so an injected
 * clock that jumps back or forth still gets the right window.
 */
export class WindowCache {
  private readonly cache = new Map<string, BudgetWindow>();

  get(kind: WindowKind, timeZone: string, now: number): BudgetWindow {
    const k = kind === 'hour' ? 'hour' : `${kind}|${timeZone}`;
    const w = this.cache.get(k);
    if (w && now >= w.start && now < w.end) return w;
    const fresh = windowAt(kind, timeZone, now);
    this.cache.set(k, fresh);
    return fresh;
  }
}
