import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { parseBudgetConfig } from '../../../src/budget/config.js';
import type { TollgateBudgetGate } from '../../../src/budget/gate.js';
import { decodeUsageState, type UsageState } from '../../../src/budget/lease.js';
import { usageKey } from '../../../src/budget/nats-store.js';
import { openBudgetGate } from '../../../src/budget/open.js';
import type { ChargeSubject } from '../../../src/budget/types.js';
import { windowAt } from '../../../src/budget/window.js';
import { PolicyControlPlane } from '../../../src/controlplane/serve.js';
import { NatsLink } from '../../../src/nats/connect.js';
import { certificateIdentity } from '../../../src/nats/identity.js';
import { issueNatsCredentials, type NatsCredentials } from '../../../src/nats/credentials.js';
import { DEFAULT_RESOURCES } from '../../../src/nats/permissions.js';
import { LocalPki } from '../../../src/pki/index.js';
import { PolicyHolder } from '../../../src/policy/holder.js';
import { NatsBundleSource } from '../../../src/policy/sources/nats.js';
import { freePort } from '../../../src/util/net.js';
import { NatsServer, NatsSupercluster } from '../../../src/nats/server.js';
import { runTollgate } from '../../support/cli.js';
import { CuttableRelay } from '../../support/tcp-relay.js';
import { keyPair } from '../../unit/bundle/fixtures.js';
import { waitFor, writePolicy } from '../controlplane/support.js';

/**
 * Issue 20, multi-region: two NATS clusters ("east", "west") joined by TLS gateways into one
 * supercluster, every component with its own certificate credential. One server per region: the
 * gateway, placement and partition semantics are those of bigger clusters (a region's streams
 * live on its own servers; a cut gateway separates the regions), only a region's own node
 * failures are left out, which test/integration/nats/cluster.test.ts covers.
 */

const team: ChargeSubject = { team: 'payments', agent: 'bot', sub: 'alice', server: 'ledger', tool: 'query' };
const WORKERS = 3;
const MAX_RESULT = 60;
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Spent {
  charged: number;
  calls: number;
  /** Refusals because shared state could not be reached, and how long they went on (ms). */
  unreachable: number;
  unreachableMs: number;
}

/**
 * Authz-like load on one gate: WORKERS concurrent calls, each checked with its arguments (5-20
 * tokens), charged, then charged its result (10-60 tokens) a moment later, as ext_proc does. Stops
 * at the first lasting refusal (budget used up), or once `stopAt` tokens were charged. Refusals
 * for unreachable state are counted and retried, for at most 30 s.
 */
async function spend(gate: TollgateBudgetGate, seed: number, stopAt = Infinity): Promise<Spent> {
  const out: Spent = { charged: 0, calls: 0, unreachable: 0, unreachableMs: 0 };
  let firstUnreachable = 0;
  let x = seed;
  const rnd = (n: number): number => { x = (x * 1103515245 + 12345) & 0x7fffffff; return x % n; };
  let stop = false;
  const worker = async (): Promise<void> => {
    while (!stop && out.charged < stopAt) {
      const args = 5 + rnd(16);
      const loading = gate.prepare(team); // as Check does
      if (loading) await loading;
      const r = gate.check(team, args);
      if (r.exhausted) {
        const reason = r.reason ?? '';
        if (/unreachable/.test(reason)) {
          out.unreachable++;
          firstUnreachable ||= Date.now();
          out.unreachableMs = Date.now() - firstUnreachable;
          if (out.unreachableMs > 30_000) throw new Error(`state unreachable for 30 s: ${reason}`);
        } else if (!/renewing|loading/.test(reason)) stop = true; // used up; the others pass in a moment
        await pause(5);
        continue;
      }
      out.calls++;
      gate.charge(team, args);
      out.charged += args;
      await pause(rnd(3));
      const result = 10 + rnd(MAX_RESULT - 9);
      gate.charge(team, result);
      out.charged += result;
    }
  };
  await Promise.all(Array.from({ length: WORKERS }, worker));
  return out;
}

function budgets(limit: number, nats: string): ReturnType<typeof parseBudgetConfig> {
  return parseBudgetConfig(
    `budgets:\n  - { name: payments, scope: { team: payments }, limit: ${limit}, window: day }\n` +
    `nats: { ${nats}, lease: { fraction: 0.01, min: 100, max: 400, ttl: 30s }, syncInterval: 100ms, timeout: 1s }\n`,
    'budgets.yaml',
  );
}

describe('multi-region: two NATS clusters joined by gateways', function () {
  this.timeout(90000);
  let work: string;
  let sc: NatsSupercluster;
  let creds: NatsCredentials;
  const links: NatsLink[] = [];
  const relays: CuttableRelay[] = [];
  const closers: Array<() => Promise<void>> = [];

  const link = (component: string, region: string): NatsLink => {
    const l = NatsLink.open({ servers: sc.region(region).urls, tls: creds.clients.get(component)!.tls }, { name: `${component} in ${region}` });
    links.push(l);
    return l;
  };

  /** The usage entry of today's window, read through `l` (an authz link: it may read usage) with a direct get, as the store does. */
  async function usageIn(l: NatsLink, bucket: string): Promise<UsageState> {
    const e = await (await new Kvm(await l.ready()).open(bucket, { allow_direct: true })).get(usageKey('payments', windowAt('day', 'UTC', Date.now()).key));
    return decodeUsageState(e ? new TextDecoder().decode(e.value) : '{}');
  }

  /** The cluster (region) holding a stream, as the control plane's link (in east) sees it. */
  async function clusterOf(stream: string): Promise<string | undefined> {
    return (await (await jetstreamManager(await links[0]!.ready())).streams.info(stream)).cluster?.name;
  }

  let gates = 0;
  async function gate(component: string, region: string, limit: number, nats: string): Promise<TollgateBudgetGate> {
    const opened = await openBudgetGate(budgets(limit, nats), { stateDir: join(work, component), link: link(component, region), replicaId: `${component}-${++gates}` });
    closers.push(() => opened.gate.close());
    return opened.gate;
  }

  before(async () => {
    const t0 = Date.now();
    work = mkdtempSync(join(tmpdir(), 'tollgate-multi-region-'));
    creds = await issueNatsCredentials(await LocalPki.open(join(work, 'pki')), [
      { name: 'controlplane', role: 'controlplane', namespace: 'tollgate-system' },
      { name: 'authz-east', role: 'authz' },
      { name: 'authz-west', role: 'authz' },
    ], { resources: { ...DEFAULT_RESOURCES, budgetRegions: ['east', 'west'] } });
    sc = await NatsSupercluster.start({
      regions: [{ name: 'east', size: 1 }, { name: 'west', size: 1 }], tls: creds.server, users: creds.users, storeDir: join(work, 'nats'),
      // Every gateway connection runs through a relay the last test cuts: a partition with every server up.
      gatewayVia: async (_region, port) => {
        const relay = await CuttableRelay.start(port);
        relays.push(relay);
        return relay.port;
      },
    });
    // The JetStream meta group spans both regions: it needs the gateway up and a leader before
    // any stream can be made (account info is answered by that leader).
    const nc = await link('controlplane', 'east').ready(20000);
    await waitFor(() => jetstreamManager(nc).then((jsm) => jsm.getAccountInfo()).then(() => true, () => false), 'a JetStream meta leader across the regions', () => '', 40000);
    console.log(`      (supercluster up, meta leader elected in ${Date.now() - t0} ms)`);
  });
  after(async () => {
    for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
    for (const l of links.splice(0)) await l.close();
    await sc?.dispose();
    for (const r of relays.splice(0)) await r.close();
    rmSync(work, { recursive: true, force: true });
  });

  it('serves a policy the control plane publishes in east to an authz connected in west', async () => {
    const keys = await keyPair('EdDSA');
    const policies = join(work, 'policies');
    writePolicy(policies, ['a']);
    const keyFile = join(work, 'signing.pem');
    writeFileSync(keyFile, keys.signing.key.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
    const tls = creds.clients.get('controlplane')!.tls;
    // The control plane as an operator runs it: places every stream, a usage bucket per region,
    // and publishes revision 1.
    const run = await runTollgate([
      'controlplane', 'serve', '--once', '--no-xds', '--policies', policies, '--signing-key', keyFile, '--state', join(work, 'cp'),
      '--nats', sc.region('east').urls.join(','), '--nats-ca', tls.ca, '--nats-cert', tls.cert, '--nats-key', tls.key,
      '--region', 'east', '--budget-regions', 'east,west',
    ], { timeoutMs: 90_000 });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /published revision 1/);

    // Then live: the same control plane code, same state, publishing the next revisions.
    const cp = new PolicyControlPlane({
      policiesDir: policies, signingKey: keys.signing, nats: link('controlplane', 'east'),
      stateFile: join(work, 'cp', 'controlplane-revision.json'), debounceMs: 50, pollMs: 300, retryMs: 200, publisher: { region: 'east' },
    });
    const published: number[] = [];
    cp.on('published', (e) => published.push(e.pointer.revision));
    await cp.start();

    const west = link('authz-west', 'west');
    const holder = new PolicyHolder();
    const source = new NatsBundleSource({ holder, nats: west, keys: [keys.verification], retryMs: 200, pollMs: 500 });
    try {
      await source.start();
      assert.equal(await source.whenLoaded(), '1');
      assert.equal((await west.ready()).info?.cluster, 'west', 'the authz is connected to the west cluster');
      assert.equal(await clusterOf('KV_tollgate_policy'), 'east', 'the pointer lives in east');
      assert.equal(await clusterOf('OBJ_tollgate_bundles'), 'east', 'the bundles live in east');

      // A new revision crosses the gateway too, live.
      writePolicy(policies, ['a', 'b']);
      await waitFor(() => holder.get()?.revision === '2', 'west on revision 2', () => source.status());
      assert.deepEqual(published, [2]);
    } finally {
      // Stopped while both regions are up (the last test cuts east off).
      await source.stop();
      await cp.stop();
    }
  });

  it('admits no gateway peer but the NATS servers: a mesh client certificate from the same CA is refused', async () => {
    // A server that presents authz's certificate (valid, same CA, but not the servers' identity)
    // tries to join west as region "rogue": a gateway would carry traffic past user permissions.
    // It even claims the servers' identity as its user name; its certificate does not carry it.
    const host = '127.0.0.1';
    const routePort = await freePort(host);
    const rogue = await NatsServer.start({
      tls: creds.clients.get('authz-west')!.tls, storeDir: join(work, 'rogue'), serverName: 'rogue-n1',
      cluster: { name: 'rogue', host, port: routePort, routes: [`nats-route://${host}:${routePort}`] },
      gateway: {
        name: 'rogue', host, port: await freePort(host), peerIdentity: certificateIdentity(creds.server.cert),
        gateways: sc.gateways.filter((g) => g.name === 'west'),
      },
    });
    try {
      const west = sc.region('west').members[0]!;
      await waitFor(() => /Gateway Error 'Authorization Violation'/.test(rogue.output), 'west refuses the rogue gateway', () => rogue.output.slice(-600), 20000);
      assert.match(west.output, /gateway connection closed: Authentication Failure/i);
      assert.doesNotMatch(west.output, /Inbound gateway connection from "rogue"[^\n]*registered/);
    } finally {
      await rogue.dispose();
    }
  });

  it('scope global: charges from both regions draw on one bucket, in east, and end within one bound', async () => {
    const LIMIT = 6000;
    const east = await gate('authz-east', 'east', LIMIT, 'scope: global');
    const west = await gate('authz-west', 'west', LIMIT, 'scope: global');
    const [e, w] = await Promise.all([spend(east, 1), spend(west, 2)]);
    assert.ok(e.calls > 0 && w.calls > 0, `both regions served calls (east ${e.calls}, west ${w.calls})`);
    await east.close();
    await west.close();
    const state = await usageIn(link('authz-west', 'west'), 'tollgate_budgets');
    assert.equal(await clusterOf('KV_tollgate_budgets'), 'east');
    const total = e.charged + w.charged;
    assert.equal(state.reported, total, 'the one bucket accounts for every token charged in either region');
    assert.equal(state.committed, total, 'all leases given back');
    // docs/budgets.md: past the limit only by results of calls in flight, over all replicas.
    const bound = 2 * WORKERS * MAX_RESULT;
    assert.ok(total <= LIMIT + bound, `charged ${total} ≤ ${LIMIT} + ${bound}`);
    assert.ok(total >= LIMIT - 2 * 400, `charged ${total} uses the budget up`);
    console.log(`      (global: east ${e.charged} + west ${w.charged} = ${total} of ${LIMIT}; overshoot ${Math.max(0, total - LIMIT)} ≤ ${bound})`);
  });

  it('scope region: a bucket per region; with the gateway cut both regions keep charging, each within its own bound', async () => {
    const LIMIT = 4000;
    const regionEast = await gate('authz-east', 'east', LIMIT, 'scope: region, region: east');
    const regionWest = await gate('authz-west', 'west', LIMIT, 'scope: region, region: west');
    // For contrast, global-scope gates in both regions: their one bucket is in east.
    const globalEast = await gate('authz-east', 'east', 1_000_000, 'scope: global');
    const globalWest = await gate('authz-west', 'west', 1_000_000, 'scope: global');
    assert.equal(await clusterOf('KV_tollgate_budgets_east'), 'east');
    assert.equal(await clusterOf('KV_tollgate_budgets_west'), 'west');

    // Half of each region's budget before the cut.
    const [e1, w1] = await Promise.all([spend(regionEast, 3, LIMIT / 2), spend(regionWest, 4, LIMIT / 2)]);
    await Promise.all([globalWest.prepare(team), globalEast.prepare(team)]);
    assert.equal(globalWest.check(team, 10).exhausted, null, 'the global budget is reachable from west before the cut');

    // The cut: every gateway connection is dropped and refused; all servers stay up.
    for (const r of relays) r.cut();
    const cutAt = Date.now();
    await waitFor(() => /unreachable/.test(globalWest.check(team, 10).reason ?? ''), 'the global budget in west fails closed', () => globalWest.check(team, 10).reason, 20000);
    const failedClosedMs = Date.now() - cutAt;
    // Both regions spend the rest of their own budgets during the cut.
    const [e2, w2] = await Promise.all([spend(regionEast, 5), spend(regionWest, 6)]);
    // East holds the global bucket: there it keeps working.
    assert.equal(globalEast.check(team, 10).exhausted, null, 'the global budget still serves east, where its bucket is');
    assert.match(globalWest.check(team, 10).reason ?? '', /unreachable/, 'and still refuses in west');

    // Healed: west's global budget comes back by itself.
    for (const r of relays) r.heal();
    const healAt = Date.now();
    await waitFor(() => globalWest.check(team, 10).exhausted === null, 'the global budget serves west again', () => globalWest.check(team, 10).reason, 30000);
    const recoveredMs = Date.now() - healAt;

    await regionEast.close();
    await regionWest.close();
    const east = e1.charged + e2.charged;
    const west = w1.charged + w2.charged;
    assert.equal((await usageIn(link('authz-east', 'east'), 'tollgate_budgets_east')).reported, east, 'east\'s bucket accounts for every token charged in east, during the cut too');
    assert.equal((await usageIn(link('authz-west', 'west'), 'tollgate_budgets_west')).reported, west, 'west\'s bucket accounts for every token charged in west, during the cut too');
    const perRegion = WORKERS * MAX_RESULT;
    for (const [name, half, n] of [['east', e2, east], ['west', w2, west]] as const) {
      assert.ok(half.charged >= LIMIT / 2 - 400, `${name} charged ${half.charged} more during the cut`);
      assert.ok(n <= LIMIT + perRegion, `${name} charged ${n} ≤ ${LIMIT} + ${perRegion}`);
      assert.ok(n >= LIMIT - 400, `${name} used its budget up (${n})`);
    }
    // The documented price: the regions together spend up to regions × (limit + per-region bound).
    const total = east + west;
    assert.ok(total > LIMIT + perRegion && total <= 2 * (LIMIT + perRegion), `total ${total} is two regions' worth`);
    // The moment the gateway goes, the JetStream meta group (it spans both regions) loses its
    // leader; each region's own bucket is read with direct gets, which do not need it.
    const blinks = e2.unreachable + w2.unreachable;
    console.log(`      (per region: east ${e1.charged} + ${e2.charged} during the cut, west ${w1.charged} + ${w2.charged}; total ${total} for a per-region limit of ${LIMIT}, ≤ 2 × (${LIMIT} + ${perRegion}); regional refusals for unreachable state during the cut: ${blinks}; global budget in west failed closed ${failedClosedMs} ms after the cut, served again ${recoveredMs} ms after the heal)`);
  });
});
