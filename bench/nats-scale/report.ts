import { summarize } from './stats.js';
import type { ScaleResult } from './types.js';

/** Markdown tables of `make bench-nats-scale` results, as docs/scaling.md shows them. Pure. */

const ms = (v: number): string => (Number.isFinite(v) ? (v >= 100 ? v.toFixed(0) : v.toFixed(1)) : '-');
const num = (v: number, digits = 0): string => (Number.isFinite(v) ? v.toFixed(digits) : '-');
const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);

function row(cells: string[]): string {
  return `| ${cells.join(' | ')} |`;
}

function table(head: string[], rows: string[][]): string {
  return [row(head), row(head.map(() => '---')), ...rows.map(row)].join('\n');
}

/** Propagation over every publish of a run, pooled: p50/p99 of "publish → sidecar swapped it in". */
export function pooledPropagation(r: ScaleResult): { p50: number; p99: number; max: number; reached: string } {
  const all = summarize(r.propagation.flatMap((p) => (p.toAll.n > 0 ? [p.toAll.p50, p.toAll.p99, p.toAll.max] : [])));
  const worstP99 = Math.max(...r.propagation.map((p) => p.toAll.p99));
  const reached = r.propagation.map((p) => `${p.reached}/${r.sidecars}`).join(', ');
  return { p50: Math.max(...r.propagation.map((p) => p.toAll.p50)), p99: worstP99, max: all.max, reached };
}

/** Worst overshoot over a run's budgets, as "tokens (share of the bound)". */
export function worstOvershoot(r: ScaleResult): string {
  let worst = r.lease.budgets[0];
  for (const b of r.lease.budgets) if (worst && b.overshoot / b.bound > worst.overshoot / worst.bound) worst = b;
  if (!worst) return '-';
  return `${worst.overshoot} of ${worst.bound} (${num((worst.overshoot / worst.bound) * 100)}%)`;
}

export function formatResults(results: readonly ScaleResult[]): string {
  const main = table(
    ['N sidecars', 'workers / NATS conns', 'bundle to all N p50 / p99 (ms, worst publish)', 'lease writes/s', 'worst overshoot (of bound)', 'log records/s', 'log publish p50 / p99 (ms)', 'NATS CPU % per node', 'NATS RSS MiB per node (peak)', 'simulator CPU %'],
    results.map((r) => {
      const p = pooledPropagation(r);
      return [
        String(r.sidecars), `${r.workers} / ${r.connections}`, `${ms(p.p50)} / ${ms(p.p99)}`, num(r.lease.writesPerSec), worstOvershoot(r),
        num(r.log.perSec), `${ms(r.log.publishMs.p50)} / ${ms(r.log.publishMs.p99)}`,
        r.servers.map((s) => num(s.cpuPercent)).join(', '), r.servers.map((s) => num(s.peakRssMiB)).join(', '), num(r.simulator.cpuPercent),
      ];
    }),
  );
  const checks = table(
    ['N sidecars', 'start-up s (store restarts)', 'publishes reached', 'records offered / acked / in stream', 'calls allowed / refused: used up, renewing lease, state unreachable', 'lease syncs crowded out', 'every budget: KV reported = charged', 'every budget: KV committed ≥ charged', 'publish failures'],
    results.map((r) => [
      String(r.sidecars), `${num(r.startSec)} (${r.restarts})`, pooledPropagation(r).reached, `${r.log.offered} / ${r.log.acked} / ${r.log.inStream}`, `${r.calls.allowed} / ${r.calls.refused.exhausted}, ${r.calls.refused.renewing}, ${r.calls.refused.unreachable}`,
      String(r.lease.crowdedOut),
      r.lease.budgets.every((b) => b.used === b.charged) ? 'yes' : `no: ${r.lease.budgets.filter((b) => b.used !== b.charged).map((b) => `${b.used} ≠ ${b.charged}`).join(', ')}`,
      r.lease.budgets.every((b) => b.committed >= b.charged) ? 'yes' : `no: ${r.lease.budgets.filter((b) => b.committed < b.charged).map((b) => `${b.committed} < ${b.charged}`).join(', ')}`,
      String(r.log.failures),
    ]),
  );
  const names = [...new Set(results.flatMap((r) => r.streams.map((s) => s.name)))];
  const streams = table(
    ['stream', ...results.map((r) => `N=${r.sidecars}: msgs, MiB (R)`)],
    names.map((n) => [n, ...results.map((r) => {
      const s = r.streams.find((x) => x.name === n);
      return s ? `${s.messages}, ${mib(s.bytes)} (R${s.replicas})` : '-';
    })]),
  );
  return [main, '', checks, '', streams].join('\n');
}
