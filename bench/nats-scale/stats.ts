import { percentile } from '../ghz.js';

/** A distribution reduced for the report (ms unless said otherwise). */
export interface Summary {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

/** Nearest-rank p50/p99 and the maximum; all NaN for no values (shown as "-", never as 0). */
export function summarize(values: readonly number[]): Summary {
  const sorted = Float64Array.from(values).sort();
  if (sorted.length === 0) return { n: 0, p50: Number.NaN, p99: Number.NaN, max: Number.NaN };
  return { n: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1]! };
}

/** CPU share of one core over a wall interval, from two readings of cumulative CPU seconds. */
export function cpuPercent(cpuStart: number, cpuEnd: number, wallSec: number): number {
  return wallSec > 0 ? ((cpuEnd - cpuStart) / wallSec) * 100 : Number.NaN;
}
