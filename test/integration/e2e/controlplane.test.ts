import { strict as assert } from 'node:assert';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kvm } from '@nats-io/kv';
import { openNats } from '../../../src/nats/connect.js';
import { parsePointer } from '../../../src/bundle/pointer.js';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { LocalMesh } from '../../../src/mesh/local.js';
import { buildPolicyBundle } from '../../../src/policy/build.js';
import { readBundle, writeBundle } from '../../../src/bundle/archive.js';
import { BundlePublisher } from '../../../src/controlplane/publisher.js';
import { withRevision } from '../../../src/bundle/manifest.js';
import { signBundle } from '../../../src/bundle/sign.js';
import { loadSigningKey } from '../../../src/bundle/keys.js';
import { dynamicListeners, httpFilterConfig } from '../../../src/envoy/config-dump.js';
import { connectClient } from '../../support/mcp-client.js';

/** Continuous MCP traffic through Envoy: every call must succeed, none may stall. */
class Traffic {
  ok = 0;
  failures: string[] = [];
  private running = true;
  private loops: Array<Promise<void>> = [];

  start(clients: Client[]): void {
    this.loops = clients.map(async (c) => {
      while (this.running) {
        try {
          const call = c.callTool({ name: 'search_docs', arguments: { query: 'refund' } }, undefined, { timeout: 10_000 });
          const r = await call;
          if (!JSON.stringify(r).includes('Refund policy')) this.failures.push(`unexpected result ${JSON.stringify(r).slice(0, 200)}`);
          else this.ok++;
        } catch (e) {
          const status = (e as { code?: unknown }).code;
          this.failures.push(`${(e as Error).message}${status !== undefined ? ` (HTTP ${String(status)})` : ''} at ${new Date().toISOString()}`);
        }
      }
    });
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }
}

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Rec { seq?: number; bundles?: Record<string, { revision: string }>; type?: string; schema?: string }

function records(dir: string): Rec[] {
  const out: Rec[] = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.jsonl')).sort()) {
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
      if (!line.trim()) continue;
      const r = JSON.parse(line) as Rec;
      if (r.schema === 'tollgate.decision/v1') out.push(r);
    }
  }
  return out.sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
}

const loadedCount = (mesh: LocalMesh): number => (mesh.authz.output.match(/"msg":"policy loaded"/g) ?? []).length;

/**
 * Issue 5, end to end: NATS + control plane (opa build, signed bundles, xDS) + authz following
 * the bundles + Envoy configured only over ADS, under continuous MCP traffic.
 */
describe('control plane, end to end', function () {
  this.timeout(240_000);
  let mesh: LocalMesh;
  let state: string;
  let policies: string;
  const clients: Client[] = [];

  before(async () => {
    state = mkdtempSync(join(tmpdir(), 'tollgate-cp-'));
    policies = join(state, 'policies');
    cpSync('policies', policies, { recursive: true });
    mesh = await LocalMesh.start({
      policies, stateDir: state, controlPlane: true,
      ports: { envoy: 0, envoyAdmin: 0, authz: 0, issuer: 0, xds: 0, nats: 0 },
      echo: process.env.TOLLGATE_TEST_ECHO === '1',
    });
    for (let i = 0; i < 3; i++) clients.push(await connectClient(mesh.endpoints.mcp, await mesh.token({ sub: `agent-${i}`, team: 'payments' })));
  });

  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await mesh?.stop();
    rmSync(state, { recursive: true, force: true });
  });

  it('Envoy got its whole config over xDS (bootstrap holds only the control-plane cluster)', async () => {
    const dump = await mesh.envoy.configDump();
    const listeners = dynamicListeners(dump);
    assert.equal(listeners.length, 1);
    assert.ok(httpFilterConfig(listeners[0]!.config, 'envoy.filters.http.ext_authz'), 'ext_authz came over LDS');
  });

  it('ten policy updates in a row under continuous traffic: zero failed or stalled calls, one revision per record', async () => {
    const traffic = new Traffic();
    traffic.start(clients);
    const dataPath = join(policies, 'data.json');
    const data = JSON.parse(readFileSync(dataPath, 'utf8')) as Record<string, unknown>;
    for (let i = 1; i <= 10; i++) {
      const before = loadedCount(mesh);
      writeFileSync(dataPath, JSON.stringify({ ...data, change_marker: i }, null, 2) + '\n');
      await until(`revision ${i} swapped in`, () => (loadedCount(mesh) > before ? true : undefined), 60_000);
      const okBefore = traffic.ok;
      await until('traffic on the new revision', () => (traffic.ok > okBefore + 3 ? true : undefined));
    }
    await traffic.stop();
    assert.deepEqual(traffic.failures, [], 'no call may fail or stall during policy swaps');
    assert.ok(traffic.ok > 30, `traffic flowed (${traffic.ok} calls)`);

    const recs = records(join(state, 'decisions'));
    const revisions: number[] = [];
    for (const r of recs) {
      const names = Object.keys(r.bundles ?? {});
      assert.equal(names.length, 1, `record ${r.seq} names exactly one bundle`);
      revisions.push(Number(r.bundles![names[0]!]!.revision));
    }
    assert.ok(new Set(revisions).size >= 11, `records span the initial and ten new revisions (${[...new Set(revisions)].join(',')})`);
    for (let i = 1; i < revisions.length; i++) assert.ok(revisions[i]! >= revisions[i - 1]!, 'revisions never go back in log order');
  });

  it('a tampered bundle is rejected while traffic continues on the previous revision', async () => {
    const traffic = new Traffic();
    traffic.start(clients);
    // Publishing takes the control plane's credential (the NATS users are least privilege).
    const cpCred = { servers: [mesh.endpoints.nats!], tls: mesh.natsCredentials.get('controlplane')!.tls };
    const link = await openNats(cpCred, { name: 'test publisher' });
    const nc = link.nc;
    let current: Awaited<ReturnType<BundlePublisher['current']>>;
    try {
      const publisher = await BundlePublisher.open(nc);
      current = (await publisher.current())!;
      const key = await loadSigningKey(join(state, 'keys', 'bundle-signing.key.pem'));
      const next = current.revision + 1;
      const signed = await signBundle(withRevision(await readBundle(await buildPolicyBundle(policies)), String(next)), key);
      // Edit a signed file afterwards: its hash no longer matches the signature.
      signed.set('/data.json', Buffer.from(JSON.stringify({ tampered: true })));
      const logBefore = mesh.authz.output.length;
      await publisher.publishSigned(await writeBundle(signed), next);
      await until('the rejection', () => (/rejected/.test(mesh.authz.output.slice(logBefore)) ? true : undefined));
      const okAt = traffic.ok;
      await until('traffic after the rejection', () => (traffic.ok > okAt + 5 ? true : undefined));
    } finally {
      await link.close();
    }
    await traffic.stop();
    assert.deepEqual(traffic.failures, []);
    const recs = records(join(state, 'decisions'));
    const last = recs[recs.length - 1]!;
    const rev = Number(Object.values(last.bundles!)[0]!.revision);
    assert.equal(rev, current!.revision, 'decisions still name the last good revision, not the tampered one');
    // The control plane did not publish that bundle: it puts the pointer back and says so.
    const reviewer = await openNats({ servers: [mesh.endpoints.nats!], tls: mesh.natsCredentials.get('reviewer')!.tls }, { name: 'test reviewer' });
    try {
      const kv = await new Kvm(reviewer.nc).open('tollgate_policy');
      const pointerRevision = async (): Promise<number> => parsePointer((await kv.get('current'))!.value).revision;
      await until('the pointer put back', async () => ((await pointerRevision()) === current!.revision ? true : undefined));
    } finally {
      await reviewer.close();
    }
    assert.match(mesh.controlPlane!.output, /ALERT pointer tampered with/);
  });

  it('a sidecar config change pushed over xDS (the ext_authz timeout) is live in Envoy without a restart', async () => {
    const pid = mesh.envoy.pid;
    const timeoutOf = async (): Promise<string | undefined> => {
      const l = dynamicListeners(await mesh.envoy.configDump())[0];
      const f = l ? httpFilterConfig(l.config, 'envoy.filters.http.ext_authz') : undefined;
      return (f?.grpc_service as { timeout?: string } | undefined)?.timeout;
    };
    assert.equal(await timeoutOf(), '1s');
    writeFileSync(mesh.sidecarConfig!, 'authz_timeout_ms: 2500\n');
    await until('the new timeout in config_dump', async () => ((await timeoutOf()) === '2.500s' ? true : undefined));
    assert.equal(mesh.envoy.pid, pid, 'same Envoy process');
    const r = await clients[0]!.callTool({ name: 'search_docs', arguments: { query: 'refund' } });
    assert.match(JSON.stringify(r), /Refund policy/);
  });
});
