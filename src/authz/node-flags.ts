/**
 * V8 flags authz is launched with wherever Tollgate starts it (the local mesh, the Kubernetes
 * sidecar, the benchmark), because authz runs in every MCP server pod and its memory is paid once
 * per pod. V8 reads heap sizes only when the process starts, so they cannot be set from inside
 * `tollgate authz` (v8.setFlagsFromString is too late for the young generation).
 *
 * --max-semi-space-size=2: V8's default young generation grows to two 16 MB semi-spaces, which
 * the allocation rate of Check fills at once; that costs ~35 MB of RSS, idle and under load.
 * --max-old-space-size=128: without a limit V8 lets the old generation grow with the allocation
 * rate under saturation instead of collecting; 128 MB is five times what authz keeps live after
 * a GC with the example policies (~25 MB), headroom for big inputs (a 1 MB JSON-RPC batch) and
 * policy data, while a lower cap (64-96 MB) bought no further saving in the measurements.
 *
 * --v8-pool-size=1: one V8 platform worker thread instead of four. Authz's CPU is one core's worth
 * (a pod's limit, the benchmark's taskset), so more threads for concurrent GC and WebAssembly
 * compilation buy no time, while each holds its own stack and malloc arena. Measured 2026-12-05
 * (same command as below, two rounds alternating, load ~12): idle 135-137 -> 100-114 MB, peak
 * 160-163 -> 126 MB with the example policy; req/s per core 546-751 vs 545-618 (within noise);
 * without the SQL parser, idle 91-93 -> 87 MB (bench/idle-rss.ts).
 *
 * Measured with `bench/main.ts --quick --servers tollgate --no-e2e --rates 1000` on the 2-core
 * dev VM under heavy load from other jobs (RSS; throughput only as a same-run sanity check):
 * defaults: idle 172 MB, peak 185-214 MB; semi-space 2: idle 134-136, peak 155-214; old space
 * 96: idle 136, peak 160; old space 128: idle 137, peak 162. req/s per core stayed within noise
 * (920-985 at ~95% of a core).
 */
export const AUTHZ_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2', '--max-old-space-size=128', '--v8-pool-size=1'];

/** NODE_OPTIONS for an authz container or process: the flags above, then whatever the operator set (later flags win). */
export function authzNodeOptions(existing = ''): string {
  return [...AUTHZ_NODE_FLAGS, existing.trim()].filter(Boolean).join(' ');
}
