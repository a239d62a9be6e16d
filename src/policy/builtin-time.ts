import type { EvalContext, HostBuiltin } from './builtin-context.js';
import { checkInt64, exactInteger, intArg, numberArg, stringArg, typeName } from './builtin-args.js';

/** time.* builtins with Go's semantics (OPA implements them with Go's time package). */

const NS_PER_SECOND = 1_000_000_000n;
const NS_PER_MS = 1_000_000;
const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

/** Days since 1970-01-01 of a proleptic Gregorian date (month 1-12), by 400-year eras. */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const monthFromMarch = (month + 9) % 12;
  const dayOfYear = Math.floor((153 * monthFromMarch + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146097 + dayOfEra - 719468;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/;

/** time.parse_rfc3339_ns: exact nanoseconds since the epoch. */
export function parseRfc3339Ns(s: string): bigint {
  const m = RFC3339.exec(s);
  if (!m) throw new Error(`cannot parse "${s}" as RFC 3339 (expected e.g. 2026-11-23T10:00:00Z)`);
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12) throw new Error(`month out of range in "${s}"`);
  if (day < 1 || day > daysInMonth(year, month)) throw new Error(`day out of range in "${s}"`);
  if (hour > 23 || minute > 59 || second > 59) throw new Error(`time of day out of range in "${s}"`);
  // Go reads at most nine fractional digits and ignores the rest.
  const frac = BigInt(((m[7] ?? '') + '000000000').slice(0, 9));
  let offsetSeconds = 0;
  const zone = m[8]!;
  if (zone !== 'Z') {
    const oh = Number(zone.slice(1, 3));
    const om = Number(zone.slice(4, 6));
    if (oh > 23 || om > 59) throw new Error(`time zone offset out of range in "${s}"`);
    offsetSeconds = (oh * 3600 + om * 60) * (zone[0] === '-' ? -1 : 1);
  }
  const seconds = BigInt(daysFromCivil(year, month, day)) * 86400n + BigInt(hour * 3600 + minute * 60 + second - offsetSeconds);
  return checkInt64(seconds * NS_PER_SECOND + frac, `"${s}"`);
}

const DURATION_UNITS: Record<string, bigint> = {
  ns: 1n, us: 1_000n, 'µs': 1_000n, 'μs': 1_000n, ms: 1_000_000n, s: NS_PER_SECOND,
  m: 60n * NS_PER_SECOND, h: 3600n * NS_PER_SECOND,
  // OPA's extension over Go: days, weeks and (365-day) years.
  d: 86400n * NS_PER_SECOND, w: 7n * 86400n * NS_PER_SECOND, y: 365n * 86400n * NS_PER_SECOND,
};
const DURATION_SEGMENT = /^(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h|d|w|y)/;

/** time.parse_duration_ns: Go's time.ParseDuration plus OPA's d/w/y units. */
export function parseDurationNs(input: string): bigint {
  let s = input;
  let negative = false;
  if (s[0] === '-' || s[0] === '+') {
    negative = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0n;
  if (s === '') throw new Error(`invalid duration "${input}"`);
  let total = 0n;
  while (s.length > 0) {
    const m = DURATION_SEGMENT.exec(s);
    if (!m || (m[1] === '' && (m[2] ?? '') === '')) throw new Error(`invalid duration "${input}" (expected e.g. 1h30m, 90s, 7d)`);
    const unit = DURATION_UNITS[m[3]!]!;
    const whole = BigInt(m[1] || '0');
    // Go scales the fraction in float64 and truncates; doing the same keeps results identical.
    const fracDigits = m[2] ?? '';
    const frac = fracDigits ? Math.trunc(Number(fracDigits) * (Number(unit) / 10 ** fracDigits.length)) : 0;
    total += whole * unit + BigInt(frac);
    s = s.slice(m[0].length);
  }
  return checkInt64(negative ? -total : total, `duration "${input}"`);
}

interface WallTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

const zoneFormats = new Map<string, Intl.DateTimeFormat>();

function zoneFormat(tz: string): Intl.DateTimeFormat {
  let f = zoneFormats.get(tz);
  if (!f) {
    // Throws RangeError for an unknown zone, as Go's LoadLocation fails.
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz === 'Local' ? undefined : tz, hourCycle: 'h23',
      year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
    });
    if (zoneFormats.size > 256) zoneFormats.clear();
    zoneFormats.set(tz, f);
  }
  return f;
}

/** The `x` operand of time.date/clock/weekday: ns, or [ns, tz]. */
function timeOperand(x: unknown): { ns: number; tz: string } {
  if (typeof x === 'number') return { ns: x, tz: 'UTC' };
  if (Array.isArray(x) && x.length > 0) {
    const ns = numberArg(x[0], 1);
    const tz = x.length > 1 ? stringArg(x[1], 1) : 'UTC';
    return { ns, tz: tz === '' ? 'UTC' : tz };
  }
  throw new TypeError(`operand 1 must be either number (ns) or [number (ns), string (tz)] but got ${typeName(x)}`);
}

function wallTime(x: unknown): WallTime {
  const { ns, tz } = timeOperand(x);
  const ms = Math.floor(ns / NS_PER_MS);
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) throw new RangeError('time outside of valid range');
  if (tz === 'UTC') {
    return { year: d.getUTCFullYear(), month: d.getUTCMonth() + 1, day: d.getUTCDate(), hour: d.getUTCHours(), minute: d.getUTCMinutes(), second: d.getUTCSeconds() };
  }
  const parts: Record<string, number> = {};
  for (const p of zoneFormat(tz).formatToParts(d)) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  return { year: parts.year!, month: parts.month!, day: parts.day!, hour: parts.hour!, minute: parts.minute!, second: parts.second! };
}

function weekday(w: WallTime): string {
  const days = daysFromCivil(w.year, w.month, w.day);
  return WEEKDAYS[(((days + 4) % 7) + 7) % 7]!;
}

/** time.add_date in UTC (Go's AddDate normalises overflowing months and days the same way). */
function addDate(x: unknown, years: unknown, months: unknown, days: unknown): ArrayBuffer {
  const { ns, tz } = timeOperand(x);
  if (tz !== 'UTC') throw new Error('time.add_date is supported in UTC only in Tollgate; pass the ns value without a time zone');
  const y = intArg(years, 2);
  const mo = intArg(months, 3);
  const dd = intArg(days, 4);
  const ms = Math.floor(ns / NS_PER_MS);
  const subMs = BigInt(Math.round(ns - ms * NS_PER_MS));
  const d = new Date(ms);
  const t = new Date(0);
  t.setUTCFullYear(d.getUTCFullYear() + y, d.getUTCMonth() + mo, d.getUTCDate() + dd);
  t.setUTCHours(d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), d.getUTCMilliseconds());
  if (Number.isNaN(t.getTime())) throw new RangeError('time outside of valid range');
  return exactInteger(checkInt64(BigInt(t.getTime()) * BigInt(NS_PER_MS) + subMs, 'result'));
}

export function timeBuiltins(ctx: EvalContext): Record<string, HostBuiltin> {
  return {
    'time.now_ns': () => exactInteger(ctx.nowNs()),
    'time.parse_rfc3339_ns': (v) => exactInteger(parseRfc3339Ns(stringArg(v, 1))),
    'time.parse_duration_ns': (v) => exactInteger(parseDurationNs(stringArg(v, 1))),
    'time.date': (x) => { const w = wallTime(x); return [w.year, w.month, w.day]; },
    'time.clock': (x) => { const w = wallTime(x); return [w.hour, w.minute, w.second]; },
    'time.weekday': (x) => weekday(wallTime(x)),
    'time.add_date': addDate,
  };
}
