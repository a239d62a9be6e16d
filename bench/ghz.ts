import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { protoIncludeDirs } from '../src/envoy/protos.js';
import { LOAD_CORE } from './proc.js';

/** One load run against one server, reduced to what the report needs. */
export interface LoadResult {
  /** Requested rate; null for saturation (as fast as the server answers). */
  targetRps: number | null;
  concurrency: number;
  connections: number;
  durationSec: number;
  /** Requests answered with gRPC OK. */
  ok: number;
  errors: number;
  /** Completed requests per second (ok + errors, over the measured window). */
  rps: number;
  latencyMs: { p50: number; p90: number; p99: number; p999: number; max: number; mean: number };
  errorSample: string | null;
}

export interface GhzOptions {
  ghz: string;
  target: string;
  dataFile: string;
  outFile: string;
  durationSec: number;
  concurrency: number;
  connections: number;
  rps?: number;
  /** Requests left out of the tally: connection set-up and JIT warm-up. */
  skipFirst?: number;
}

interface GhzDetail { latency: number; status: string; error: string }
interface GhzReport { count: number; total: number; details?: GhzDetail[]; errorDistribution?: Record<string, number> }

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

/**
 * ghz's own summary stops at p99; p99.9 needs every latency, so the JSON report's per-request
 * details are reduced here.
 */
export function summarize(report: GhzReport, o: Pick<GhzOptions, 'rps' | 'concurrency' | 'connections' | 'durationSec'>): LoadResult {
  const details = report.details ?? [];
  const lat = new Float64Array(details.length);
  let ok = 0;
  let firstError: string | null = null;
  let sum = 0;
  for (let i = 0; i < details.length; i++) {
    const d = details[i]!;
    lat[i] = d.latency / 1e6;
    sum += lat[i]!;
    if (d.status === 'OK' && !d.error) ok++;
    else firstError ??= d.error || d.status;
  }
  lat.sort();
  const totalSec = report.total / 1e9;
  return {
    targetRps: o.rps ?? null,
    concurrency: o.concurrency,
    connections: o.connections,
    durationSec: o.durationSec,
    ok,
    errors: details.length - ok,
    rps: totalSec > 0 ? report.count / totalSec : 0,
    latencyMs: {
      p50: percentile(lat, 50), p90: percentile(lat, 90), p99: percentile(lat, 99), p999: percentile(lat, 99.9),
      max: lat.length ? lat[lat.length - 1]! : Number.NaN, mean: lat.length ? sum / lat.length : Number.NaN,
    },
    errorSample: firstError,
  };
}

/** ghz arguments for the Check call with Envoy's protos (from node_modules, never vendored). */
export function ghzArgs(o: GhzOptions): string[] {
  const args = [
    '--insecure',
    '--proto', 'envoy/service/auth/v3/external_auth.proto',
    '--import-paths', protoIncludeDirs().join(','),
    '--call', 'envoy.service.auth.v3.Authorization.Check',
    '--data-file', o.dataFile,
    // The bodies hold "{{"-free JSON, but templating every message still costs the load generator.
    '--disable-template-functions', '--disable-template-data',
    '--concurrency', String(o.concurrency),
    '--connections', String(o.connections),
    '--duration', `${o.durationSec}s`,
    '--duration-stop', 'wait',
    '--timeout', '5s',
    '--cpus', '1',
    '--format', 'json',
    '--output', o.outFile,
  ];
  if (o.rps) args.push('--rps', String(o.rps));
  if (o.skipFirst) args.push('--skipFirst', String(o.skipFirst));
  args.push(o.target);
  return args;
}

/** Runs ghz on the load core and returns the reduced result; the raw report file is removed. */
export async function runGhz(o: GhzOptions): Promise<LoadResult> {
  const args = ['-c', String(LOAD_CORE), o.ghz, ...ghzArgs(o)];
  const stderr: string[] = [];
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn('taskset', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr.on('data', (b: Buffer) => stderr.push(b.toString()));
    // Bounded even if ghz hangs: its own duration plus generous slack for the report.
    const killer = setTimeout(() => child.kill('SIGKILL'), (o.durationSec + 60) * 1000);
    child.once('error', reject);
    child.once('exit', (c) => { clearTimeout(killer); resolve(c); });
  });
  let report: GhzReport;
  try {
    report = JSON.parse(readFileSync(o.outFile, 'utf8')) as GhzReport;
  } catch (e) {
    throw new Error(`ghz exited ${code} without a readable report (${(e as Error).message}): ${stderr.join('').slice(-2000)}`);
  } finally {
    rmSync(o.outFile, { force: true });
  }
  return summarize(report, o);
}
