import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { DemoMcpServer } from '../src/demo/server.js';
import { staticBootstrap } from '../src/envoy/bootstrap.js';
import type { JsonObject, JsonValue } from '../src/envoy/protojson.js';
import type { SidecarSpec } from '../src/envoy/resources.js';
import { startEnvoy, type RunningEnvoy } from '../src/envoy/run.js';
import { FilterName } from '../src/envoy/types.js';
import type { DevIssuer } from '../src/identity/issuer.js';
import { freePort, waitForPort } from '../src/util/net.js';
import { percentile } from './ghz.js';
import { currentRss, peakRss, SERVER_CORE } from './proc.js';
import type { EndToEndResult, LatencyStats } from './report.js';
import type { ServerSetup, ServerUnderTest } from './servers.js';

const run = promisify(execFile);

export interface EndToEndOptions {
  issuer: DevIssuer;
  audience: string;
  setup: ServerSetup;
  calls: number;
  warmup: number;
  startTollgate: () => Promise<ServerUnderTest>;
  startOpaEnvoy: (() => Promise<ServerUnderTest>) | null;
}

/** Drops the ext_authz filter and every per-route setting for it: the same sidecar, ungoverned. */
export function withoutExtAuthz(v: JsonValue): JsonValue {
  if (Array.isArray(v)) {
    return v.filter((x) => !(x && typeof x === 'object' && !Array.isArray(x) && x.name === FilterName.extAuthz)).map(withoutExtAuthz);
  }
  if (v && typeof v === 'object') {
    const out: JsonObject = {};
    for (const [k, x] of Object.entries(v)) {
      if (k === FilterName.extAuthz) continue;
      out[k] = withoutExtAuthz(x);
    }
    return out;
  }
  return v;
}

async function connect(url: string, token: string): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${token}` } } });
  const client = new Client({ name: 'tollgate-bench-agent', version: '1.0.0' });
  await client.connect(transport);
  return client;
}

function stats(samples: number[]): LatencyStats {
  const sorted = Float64Array.from(samples).sort();
  return { n: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), mean: samples.reduce((a, b) => a + b, 0) / samples.length };
}

/**
 * The SDK client adds an abort listener per request that it never removes; a fresh session every
 * this many calls keeps that from growing into a leak that would slow the client down.
 */
const CALLS_PER_SESSION = 500;

/** Sequential calls: one agent, one call at a time, so every sample is pure path latency. */
async function measure(url: string, token: string, calls: number, warmup: number): Promise<LatencyStats> {
  const samples: number[] = [];
  let client: Client | null = null;
  try {
    for (let i = 0; i < warmup + calls; i++) {
      if (i % CALLS_PER_SESSION === 0) {
        await client?.close().catch(() => undefined);
        client = await connect(url, token);
      }
      const t0 = process.hrtime.bigint();
      const res = await client!.callTool({ name: 'search_docs', arguments: { query: i % 2 ? 'refund' : 'chargeback' } });
      const dt = Number(process.hrtime.bigint() - t0) / 1e6;
      if (res.isError) throw new Error(`search_docs failed: ${JSON.stringify(res.content).slice(0, 300)}`);
      if (i >= warmup) samples.push(dt);
    }
    return stats(samples);
  } finally {
    await client?.close().catch(() => undefined);
  }
}

async function startSidecar(upstreamPort: number, authzTarget: string | null, issuerUrl: string): Promise<{ envoy: RunningEnvoy; url: string }> {
  const port = await freePort();
  const adminPort = await freePort();
  const authzPort = authzTarget ? Number(authzTarget.split(':')[1]) : 1; // unused without ext_authz
  const url = `http://127.0.0.1:${port}/mcp`;
  const spec: SidecarSpec = {
    nodeId: 'default/demo', server: 'demo', namespace: 'default',
    listen: { host: '127.0.0.1', port }, mcpPath: '/mcp', upstream: { host: '127.0.0.1', port: upstreamPort },
    authz: { host: '127.0.0.1', port: authzPort, timeoutMs: 1000 },
    maxRequestBytes: 1024 * 1024,
    resourceMetadata: { resource: url, authorization_servers: [issuerUrl], bearer_methods_supported: ['header'] },
    extProc: false,
  };
  const full = staticBootstrap(spec, adminPort);
  const config = authzTarget ? full : (withoutExtAuthz(full) as JsonObject);
  const envoy = await startEnvoy({ config, adminPort, concurrency: 1 });
  // Envoy shares the server core with authz, as a sidecar shares its pod's CPU; -a covers every thread.
  if (envoy.pid) await run('taskset', ['-a', '-p', '-c', String(SERVER_CORE), String(envoy.pid)]);
  await waitForPort(port);
  return { envoy, url };
}

/**
 * MCP SDK client → Envoy → demo MCP server, without and with authz in the path. The demo server
 * and the client share the load core; Envoy and authz share the server core.
 */
export async function runEndToEnd(o: EndToEndOptions): Promise<EndToEndResult> {
  const result: EndToEndResult = { calls: o.calls, direct: null, envoy: null, envoyTollgate: null, envoyOpaEnvoy: null, sidecars: null, error: null };
  const token = await o.issuer.mint({ sub: 'alice', team: 'payments', agent: 'claude-code', audience: o.audience, ttlSec: 3600 });
  const demo = await DemoMcpServer.start({ port: 0 });
  const cleanups: Array<() => Promise<void>> = [() => demo.close()];
  try {
    result.direct = await measure(demo.url, token, o.calls, o.warmup);

    const plain = await startSidecar(demo.port, null, o.issuer.url);
    cleanups.push(() => plain.envoy.stop());
    result.envoy = await measure(plain.url, token, o.calls, o.warmup);
    await plain.envoy.stop();

    const tg = await o.startTollgate();
    cleanups.push(() => tg.proc.stop());
    const governed = await startSidecar(demo.port, tg.target, o.issuer.url);
    cleanups.push(() => governed.envoy.stop());
    await measure(governed.url, token, 1, 0);
    const envoyPid = governed.envoy.pid ?? 0;
    const authzPid = tg.proc.pid ?? 0;
    const idle = { envoyIdle: currentRss(envoyPid), authzIdle: currentRss(authzPid) };
    result.envoyTollgate = await measure(governed.url, token, o.calls, o.warmup);
    result.sidecars = { ...idle, envoyPeak: peakRss(envoyPid), authzPeak: peakRss(authzPid) };
    await governed.envoy.stop();
    await tg.proc.stop();

    if (o.startOpaEnvoy) {
      const peer = await o.startOpaEnvoy();
      cleanups.push(() => peer.proc.stop());
      const viaPeer = await startSidecar(demo.port, peer.target, o.issuer.url);
      cleanups.push(() => viaPeer.envoy.stop());
      result.envoyOpaEnvoy = await measure(viaPeer.url, token, o.calls, o.warmup);
    }
  } catch (e) {
    result.error = (e as Error).message.split('\n').slice(0, 5).join(' | ');
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  }
  return result;
}
