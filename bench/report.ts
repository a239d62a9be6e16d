import type { LoadResult } from './ghz.js';
import type { ServerKind } from './servers.js';
import type { DecisionCheck } from './verify.js';

export interface ServerResult {
  kind: ServerKind;
  title: string;
  decisions: DecisionCheck;
  saturation: LoadResult | null;
  /** Server CPU seconds per second of wall time during saturation: ~1.0 means the core was busy. */
  saturationCpu: number | null;
  fixed: LoadResult[];
  /** VmRSS after start-up and one pass over the workload, before any load: what an idle pod holds. */
  idleRssBytes: number | null;
  /** VmHWM at the end of the server's run: its peak over start-up and every load phase. */
  peakRssBytes: number | null;
  error: string | null;
}

export interface LatencyStats { n: number; p50: number; p99: number; mean: number }

export interface EndToEndResult {
  calls: number;
  /** MCP client straight to the MCP server, no proxy. */
  direct: LatencyStats | null;
  /** Through Envoy without ext_authz. */
  envoy: LatencyStats | null;
  /** Through Envoy with Tollgate authz (ext_authz). */
  envoyTollgate: LatencyStats | null;
  /** Through Envoy with opa-envoy-plugin (ext_authz), the same policy. */
  envoyOpaEnvoy: LatencyStats | null;
  /** RSS of the governed pod's two sidecars (Envoy, Tollgate authz), bytes. */
  sidecars: SidecarMemory | null;
  error: string | null;
}

/**
 * idle: both started and one call answered; peak: VmHWM after the timed calls (sequential, one
 * at a time, so "peak" here is steady serving, not saturation: the saturation peak of authz is
 * the server table's).
 */
export interface SidecarMemory { envoyIdle: number | null; envoyPeak: number | null; authzIdle: number | null; authzPeak: number | null }

export interface Target { name: string; value: number | null; limit: string; pass: boolean | null }

const MB = 1e6;
const num = (v: number | null | undefined, digits = 2): string => (v == null || Number.isNaN(v) ? '—' : v.toFixed(digits));
const ms = (v: number | null | undefined): string => num(v, 3);

/**
 * Throughput on one core: requests per second of server CPU actually received. It equals the
 * measured rate when the server saturates its core, and stays meaningful when it does not: when
 * the load generator (one core too) runs out first, or a neighbour steals part of the core.
 */
export function perCore(s: LoadResult, cpu: number | null): number {
  return cpu && cpu > 0 ? s.rps / Math.min(1, cpu) : s.rps;
}

function capacity(r: ServerResult | undefined): number | null {
  return r?.saturation ? perCore(r.saturation, r.saturationCpu) : null;
}

export function findServer(results: readonly ServerResult[], kind: ServerKind): ServerResult | undefined {
  return results.find((r) => r.kind === kind);
}

function atRate(r: ServerResult | undefined, rps: number): LoadResult | undefined {
  return r?.fixed.find((f) => f.targetRps === rps);
}

function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  return a == null || b == null || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? null : a / b;
}

/** The targets, evaluated on this run's numbers (null: not measured, so neither pass nor fail). */
/** 1 − (per-core throughput with the log) / (without it): the share of the work the log adds. */
function logCost(withLog: ServerResult | undefined, without: ServerResult | undefined): number | null {
  const r = ratio(capacity(withLog), capacity(without));
  return r == null ? null : 1 - r;
}

export function evaluateTargets(results: readonly ServerResult[]): Target[] {
  const tg = findServer(results, 'tollgate');
  const peer = findServer(results, 'opa-envoy');
  const ceiling = findServer(results, 'ceiling');
  const check = (name: string, value: number | null, limit: string, ok: (v: number) => boolean): Target =>
    ({ name, value, limit, pass: value == null ? null : ok(value) });
  const tgP99 = atRate(tg, 1000)?.latencyMs.p99 ?? null;
  return [
    check('throughput on one core, tollgate / opa-envoy-plugin', ratio(capacity(tg), capacity(peer)), '≥ 1.0', (v) => v >= 1.0),
    check('throughput on one core, tollgate / ceiling', ratio(capacity(tg), capacity(ceiling)), '≥ 0.7', (v) => v >= 0.7),
    check('p99 at 1,000 req/s, tollgate (ms)', tgP99, '≤ 1.0', (v) => v <= 1.0),
    check('p99 at 1,000 req/s, tollgate / opa-envoy-plugin', ratio(tgP99, atRate(peer, 1000)?.latencyMs.p99), '≤ 0.5', (v) => v <= 0.5),
    // Issue 12: against the peer as deployed (behind jwt_authn, with its decision log), and the ceiling.
    check('throughput on one core, tollgate / opa-envoy-plugin behind jwt_authn', ratio(capacity(tg), capacity(findServer(results, 'opa-envoy-jwt'))), '≥ 3.0', (v) => v >= 3.0),
    check('throughput on one core, tollgate / opa-envoy-plugin with its decision log', ratio(capacity(tg), capacity(findServer(results, 'opa-envoy-log'))), '≥ 3.0', (v) => v >= 3.0),
    check('throughput on one core, tollgate / opa-envoy-plugin (issue 12)', ratio(capacity(tg), capacity(peer)), '≥ 3.0', (v) => v >= 3.0),
    check('throughput on one core, tollgate / ceiling (issue 12)', ratio(capacity(tg), capacity(ceiling)), '≥ 0.25', (v) => v >= 0.25),
    check('p99 at 1,000 req/s, tollgate / ceiling', ratio(tgP99, atRate(ceiling, 1000)?.latencyMs.p99), '≤ 2.0', (v) => v <= 2.0),
    // Only with 500 among --rates.
    check('p99 at 500 req/s, tollgate / ceiling', ratio(atRate(tg, 500)?.latencyMs.p99, atRate(ceiling, 500)?.latencyMs.p99), '≤ 1.5', (v) => v <= 1.5),
    // What the decision log costs: the throughput per core it takes away (tollgate against tollgate-nolog).
    check('decision log: share of throughput per core it costs', logCost(tg, findServer(results, 'tollgate-nolog')), '≤ 0.15', (v) => v <= 0.15),
    check('p99 at 1,000 req/s, tollgate with budgets over NATS / tollgate', ratio(atRate(findServer(results, 'tollgate-budgets'), 1000)?.latencyMs.p99, tgP99), '≤ 1.10', (v) => v <= 1.10),
    // Issue 12: authz runs in every MCP server pod, so its memory is paid once per pod.
    check('idle RSS, tollgate (MB)', tg?.idleRssBytes != null ? tg.idleRssBytes / MB : null, '≤ 60', (v) => v <= 60),
    check('peak RSS under load, tollgate (MB)', tg?.peakRssBytes != null ? tg.peakRssBytes / MB : null, '≤ 100', (v) => v <= 100),
  ];
}

function pad(cells: string[][]): string {
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => '| ' + r.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |').join('\n');
}

function fixedCell(f: LoadResult | undefined): string {
  if (!f) return '—';
  const l = f.latencyMs;
  const short = f.rps < (f.targetRps ?? 0) * 0.97 ? ` (only ${Math.round(f.rps)}/s)` : '';
  const errs = f.errors ? ` [${f.errors} err]` : '';
  return `${ms(l.p50)} / ${ms(l.p99)} / ${ms(l.p999)}${short}${errs}`;
}

/** Markdown table (it reads fine in a terminal too), then ratios and targets. */
export function renderReport(results: readonly ServerResult[], rates: readonly number[], e2e: EndToEndResult | null): string {
  const header = ['server', 'saturation req/s', 'server CPU', 'req/s per core', ...rates.map((r) => `@${r}/s p50 / p99 / p99.9 ms`), 'idle RSS MB', 'peak RSS MB', 'decisions'];
  const rows = results.map((r) => [
    r.title,
    r.saturation ? num(r.saturation.rps, 0) + (r.saturation.errors ? ` [${r.saturation.errors} err]` : '') : r.error ? 'failed' : '—',
    r.saturationCpu == null ? '—' : `${Math.round(r.saturationCpu * 100)}%`,
    num(capacity(r), 0),
    ...rates.map((rate) => fixedCell(atRate(r, rate))),
    r.idleRssBytes == null ? '—' : num(r.idleRssBytes / MB, 0),
    r.peakRssBytes == null ? '—' : num(r.peakRssBytes / MB, 0),
    r.decisions.mismatches.length ? `${r.decisions.mismatches.length} WRONG` : `${r.decisions.matched} ok`,
  ]);
  const out = [pad([header, header.map((h) => '-'.repeat(h.length)), ...rows])];

  const tg = findServer(results, 'tollgate');
  const peer = findServer(results, 'opa-envoy');
  const ceiling = findServer(results, 'ceiling');
  const ratioRows: string[][] = [['ratio', 'tollgate / opa-envoy-plugin', 'tollgate / ceiling']];
  ratioRows.push(['saturation req/s (measured)', num(ratio(tg?.saturation?.rps, peer?.saturation?.rps)), num(ratio(tg?.saturation?.rps, ceiling?.saturation?.rps))]);
  ratioRows.push(['req/s per core', num(ratio(capacity(tg), capacity(peer))), num(ratio(capacity(tg), capacity(ceiling)))]);
  for (const rate of rates) {
    ratioRows.push([`p50 @${rate}/s`, num(ratio(atRate(tg, rate)?.latencyMs.p50, atRate(peer, rate)?.latencyMs.p50)), num(ratio(atRate(tg, rate)?.latencyMs.p50, atRate(ceiling, rate)?.latencyMs.p50))]);
    ratioRows.push([`p99 @${rate}/s`, num(ratio(atRate(tg, rate)?.latencyMs.p99, atRate(peer, rate)?.latencyMs.p99)), num(ratio(atRate(tg, rate)?.latencyMs.p99, atRate(ceiling, rate)?.latencyMs.p99))]);
  }
  ratioRows.push(['peak RSS', num(ratio(tg?.peakRssBytes, peer?.peakRssBytes)), num(ratio(tg?.peakRssBytes, ceiling?.peakRssBytes))]);
  out.push('', pad([ratioRows[0]!, ratioRows[0]!.map((h) => '-'.repeat(h.length)), ...ratioRows.slice(1)]));

  const targets = evaluateTargets(results);
  const tRows = targets.map((t) => [t.name, t.value == null ? '—' : num(t.value, 3), t.limit, t.pass == null ? 'not measured' : t.pass ? 'PASS' : 'FAIL']);
  const tHead = ['target (issues 6, 12)', 'measured', 'limit', 'result'];
  out.push('', pad([tHead, tHead.map((h) => '-'.repeat(h.length)), ...tRows]));

  if (e2e) {
    out.push('', `End to end: MCP SDK client → Envoy → demo MCP server, ${e2e.calls} sequential tools/call per path`);
    if (e2e.error) out.push(`  failed: ${e2e.error}`);
    const eRows: string[][] = [['path', 'p50 ms', 'p99 ms', 'added p50 ms', 'added p99 ms']];
    const base = e2e.envoy;
    const line = (name: string, s: LatencyStats | null, added: boolean): void => {
      if (!s) return;
      eRows.push([name, ms(s.p50), ms(s.p99), added && base ? ms(s.p50 - base.p50) : '', added && base ? ms(s.p99 - base.p99) : '']);
    };
    line('direct (no proxy)', e2e.direct, false);
    line('Envoy, no ext_authz', e2e.envoy, false);
    line('Envoy + tollgate authz', e2e.envoyTollgate, true);
    line('Envoy + opa-envoy-plugin', e2e.envoyOpaEnvoy, true);
    out.push(pad([eRows[0]!, eRows[0]!.map((h) => '-'.repeat(h.length)), ...eRows.slice(1)]));
    const m = e2e.sidecars;
    if (m) {
      const mb = (v: number | null): string => (v == null ? '—' : num(v / MB, 0));
      const sum = (a: number | null, b: number | null): number | null => (a == null || b == null ? null : a + b);
      const tg = findServer(results, 'tollgate');
      out.push('', 'Sidecar memory of one governed pod (RSS MB): idle = started + one call; serving = peak over the sequential calls above');
      const mRows = [['sidecar', 'idle', 'serving', 'authz peak under saturation (table above)'],
        ['Envoy (1 worker)', mb(m.envoyIdle), mb(m.envoyPeak), ''],
        ['Tollgate authz', mb(m.authzIdle), mb(m.authzPeak), mb(tg?.peakRssBytes ?? null)],
        ['pod total', mb(sum(m.envoyIdle, m.authzIdle)), mb(sum(m.envoyPeak, m.authzPeak)), mb(sum(m.envoyPeak, tg?.peakRssBytes ?? null))]];
      out.push(pad([mRows[0]!, mRows[0]!.map((h) => '-'.repeat(h.length)), ...mRows.slice(1)]));
    }
  }

  const problems = results.flatMap((r) => [
    ...(r.error ? [`${r.title}: ${r.error}`] : []),
    ...r.decisions.mismatches.map((m) => `${r.title}: decision mismatch: ${m}`),
  ]);
  if (problems.length) out.push('', 'Problems:', ...problems.map((p) => `  - ${p}`));
  return out.join('\n');
}
