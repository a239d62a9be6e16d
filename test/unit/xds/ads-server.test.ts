import { strict as assert } from 'node:assert';
import * as grpc from '@grpc/grpc-js';
import { unpackAny } from '../../../src/envoy/protojson.js';
import { aggregatedDiscoveryService } from '../../../src/envoy/protos.js';
import { ResourceTypeUrl } from '../../../src/envoy/types.js';
import { makeSnapshot, SnapshotCache, type Snapshot } from '../../../src/xds/cache.js';
import type { DiscoveryResponse } from '../../../src/xds/messages.js';
import { AdsServer, type NackRecord } from '../../../src/xds/server.js';

/** The ADS protocol state machine, driven by an in-process gRPC client playing Envoy. */

const { cluster: CDS, endpoint: EDS, listener: LDS, route: RDS } = ResourceTypeUrl;

function snapshot(version: string, opts: { routes?: string[]; clusters?: string[] } = {}): Snapshot {
  const clusters = opts.clusters ?? ['c1'];
  return makeSnapshot({
    clusters: clusters.map((name) => ({ name, type: 'EDS', eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' } } })),
    endpoints: clusters.map((name) => ({ cluster_name: name, endpoints: [] })),
    listeners: [{ name: 'l1' }],
    routes: (opts.routes ?? ['r1', 'r2']).map((name) => ({ name, virtual_hosts: [] })),
  }, version);
}

interface Request {
  versionInfo?: string;
  node?: { id: string; cluster?: string };
  resourceNames?: string[];
  typeUrl: string;
  responseNonce?: string;
  errorDetail?: { code: number; message: string };
}

type Response = DiscoveryResponse & { resources: Array<{ type_url: string; value: Buffer }> };

/** One ADS stream seen from the client side: what it received, in order. */
class FakeEnvoy {
  private readonly received: Response[] = [];
  private waiting: ((r: Response) => void) | undefined;
  private readonly stream: grpc.ClientDuplexStream<Request, Response>;
  ended = false;
  status: grpc.StatusObject | undefined;

  constructor(client: grpc.Client, readonly nodeId: string) {
    const method = aggregatedDiscoveryService().StreamAggregatedResources!;
    this.stream = client.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize as (b: Buffer) => Response);
    this.stream.on('data', (r: Response) => {
      if (this.waiting) { const w = this.waiting; this.waiting = undefined; w(r); } else this.received.push(r);
    });
    this.stream.on('error', () => undefined);
    this.stream.on('status', (s) => { this.status = s; });
    this.stream.on('end', () => { this.ended = true; });
  }

  send(req: Omit<Request, 'node'>, withNode = false): void {
    this.stream.write(withNode ? { ...req, node: { id: this.nodeId, cluster: 'test' } } : req);
  }

  /** The next response; fails the test if none comes within the deadline. */
  next(timeoutMs = 5000): Promise<Response> {
    const r = this.received.shift();
    if (r) return Promise.resolve(r);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { this.waiting = undefined; reject(new Error('no DiscoveryResponse arrived')); }, timeoutMs);
      this.waiting = (x) => { clearTimeout(t); resolve(x); };
    });
  }

  get pending(): number { return this.received.length; }

  /** ACKs `r` with the given subscription. */
  ack(r: Response, names: string[] = []): void {
    this.send({ typeUrl: r.typeUrl, versionInfo: r.versionInfo, responseNonce: r.nonce, resourceNames: names });
  }

  close(): void { this.stream.end(); }
}

function names(r: Response): string[] {
  return r.resources.map((a) => {
    const m = unpackAny(a);
    return String(m.name ?? m.clusterName);
  });
}

describe('ADS server protocol', function () {
  this.timeout(20_000);
  let cache: SnapshotCache;
  let ads: AdsServer;
  let client: grpc.Client;
  const envoys: FakeEnvoy[] = [];

  const connect = (nodeId: string): FakeEnvoy => {
    const e = new FakeEnvoy(client, nodeId);
    envoys.push(e);
    return e;
  };

  beforeEach(async () => {
    cache = new SnapshotCache();
    ads = await AdsServer.start({ cache, controlPlaneId: 'tollgate-test' });
    client = new grpc.Client(ads.address, grpc.credentials.createInsecure());
  });

  afterEach(async () => {
    for (const e of envoys.splice(0)) e.close();
    client.close();
    await ads.stop();
  });

  it('answers the first request of a type with the snapshot, then sends again only when the version changes', async () => {
    cache.setSnapshot('n1', snapshot('v1'));
    const envoy = connect('n1');
    envoy.send({ typeUrl: CDS }, true);
    const r1 = await envoy.next();
    assert.equal(r1.typeUrl, CDS);
    assert.equal(r1.versionInfo, 'v1');
    assert.ok(r1.nonce);
    assert.equal(r1.controlPlane?.identifier, 'tollgate-test');
    assert.equal(r1.resources[0]!.type_url, CDS);
    assert.deepEqual(names(r1), ['c1']);

    envoy.ack(r1);
    cache.setSnapshot('n1', snapshot('v2', { clusters: ['c1', 'c2'] }));
    const r2 = await envoy.next();
    assert.equal(r2.versionInfo, 'v2', 'the ACK itself got no answer: the next response is the new version');
    assert.deepEqual(names(r2), ['c1', 'c2']);
    assert.notEqual(r2.nonce, r1.nonce);
    envoy.ack(r2);

    const status = await waitFor(() => ads.status().streams[0]?.types[0]?.ackedVersion === 'v2' && ads.status().streams[0]!.types[0]!);
    assert.equal(status.responses, 2);
    assert.equal(status.awaitingAck, false);
    assert.equal(ads.status().streams[0]!.node?.id, 'n1');
  });

  it('records a NACK once, does not resend the rejected version, and ignores stale nonces', async () => {
    const nacks: NackRecord[] = [];
    ads.onNack((n) => nacks.push(n));
    cache.setSnapshot('n1', snapshot('v1'));
    const envoy = connect('n1');
    envoy.send({ typeUrl: CDS }, true);
    const r1 = await envoy.next();
    envoy.ack(r1);
    cache.setSnapshot('n1', snapshot('v2'));
    const r2 = await envoy.next();

    envoy.send({ typeUrl: CDS, versionInfo: 'v1', responseNonce: r2.nonce, errorDetail: { code: 3, message: 'cluster c1: bad thing' } });
    await waitFor(() => nacks.length === 1);
    assert.deepEqual(
      { node: nacks[0]!.nodeId, type: nacks[0]!.typeUrl, version: nacks[0]!.version, kept: nacks[0]!.acceptedVersion, msg: nacks[0]!.message },
      { node: 'n1', type: CDS, version: 'v2', kept: 'v1', msg: 'cluster c1: bad thing' },
    );
    // A request carrying an old nonce is stale: no answer, no state change.
    envoy.send({ typeUrl: CDS, versionInfo: 'v1', responseNonce: r1.nonce });

    cache.setSnapshot('n1', snapshot('v3'));
    const r3 = await envoy.next();
    assert.equal(r3.versionInfo, 'v3', 'v2 was not sent again after its NACK');
    const t = ads.status().streams[0]!.types[0]!;
    assert.equal(t.responses, 3);
    assert.equal(t.nackedVersion, 'v2');
    assert.equal(t.ackedVersion, 'v1');

    // The same rejection from a reconnecting Envoy is not reported twice.
    const again = connect('n1');
    cache.setSnapshot('n1', snapshot('v2'));
    again.send({ typeUrl: CDS, versionInfo: 'v1' }, true);
    const ra = await again.next();
    assert.equal(ra.versionInfo, 'v2');
    again.send({ typeUrl: CDS, versionInfo: 'v1', responseNonce: ra.nonce, errorDetail: { code: 3, message: 'cluster c1: bad thing' } });
    // The first Envoy, once it ACKs v3, is behind the snapshot (v2 again) and gets it — and rejects it alike.
    envoy.ack(r3);
    const r4 = await envoy.next();
    assert.equal(r4.versionInfo, 'v2');
    envoy.send({ typeUrl: CDS, versionInfo: 'v3', responseNonce: r4.nonce, errorDetail: { code: 3, message: 'cluster c1: bad thing' } });
    await waitFor(() => ads.status().streams.every((s) => !s.types[0]?.awaitingAck));
    assert.equal(nacks.length, 1);
    assert.equal(ads.nacks.length, 1);
  });

  it('sends RDS and EDS resources by name, and answers a changed subscription at the same version', async () => {
    cache.setSnapshot('n1', snapshot('v1', { routes: ['r1', 'r2', 'r3'] }));
    const envoy = connect('n1');
    envoy.send({ typeUrl: RDS, resourceNames: ['r1'] }, true);
    const a = await envoy.next();
    assert.deepEqual(names(a), ['r1']);
    envoy.ack(a, ['r1', 'r3']);
    const b = await envoy.next();
    assert.equal(b.versionInfo, 'v1');
    assert.deepEqual(names(b), ['r1', 'r3']);
    envoy.ack(b, ['r1', 'r3']);
    cache.setSnapshot('n1', snapshot('v2', { routes: ['r1', 'r2', 'r3'] }));
    const c = await envoy.next();
    assert.equal(c.versionInfo, 'v2');
    assert.deepEqual(names(c), ['r1', 'r3']);
    assert.deepEqual(ads.status().streams[0]!.types[0]!.subscribed, ['r1', 'r3']);
  });

  it('treats empty names and "*" as wildcard for LDS and CDS', async () => {
    cache.setSnapshot('n1', snapshot('v1', { clusters: ['a', 'b'] }));
    const envoy = connect('n1');
    envoy.send({ typeUrl: CDS, resourceNames: ['*'] }, true);
    assert.deepEqual(names(await envoy.next()), ['a', 'b']);
    assert.equal(ads.status().streams[0]!.types[0]!.subscribed, '*');
  });

  it('pushes a new snapshot as clusters, endpoints, listeners, routes', async () => {
    cache.setSnapshot('n1', snapshot('v1'));
    const envoy = connect('n1');
    envoy.send({ typeUrl: LDS }, true);
    envoy.ack(await envoy.next());
    envoy.send({ typeUrl: RDS, resourceNames: ['r1'] });
    const rds = await envoy.next();
    envoy.ack(rds, ['r1']);
    envoy.send({ typeUrl: CDS });
    envoy.ack(await envoy.next());
    envoy.send({ typeUrl: EDS, resourceNames: ['c1'] });
    const eds = await envoy.next();
    envoy.ack(eds, ['c1']);
    await waitFor(() => ads.status().streams[0]!.types.every((t) => !t.awaitingAck && t.ackedVersion === 'v1'));

    cache.setSnapshot('n1', snapshot('v2'));
    const order = [];
    for (let i = 0; i < 4; i++) order.push((await envoy.next()).typeUrl);
    assert.deepEqual(order, [CDS, EDS, LDS, RDS]);
  });

  it('serves the default snapshot to unknown nodes, and waits when there is none', async () => {
    const known = connect('nobody');
    known.send({ typeUrl: CDS }, true);
    await waitFor(() => ads.status().streams.some((s) => s.node?.id === 'nobody'));
    assert.equal(known.pending, 0);
    cache.setDefaultSnapshot(snapshot('d1'));
    const r = await known.next();
    assert.equal(r.versionInfo, 'd1');
    known.ack(r);
    cache.setSnapshot('nobody', snapshot('own1'));
    assert.equal((await known.next()).versionInfo, 'own1');
  });

  it('does not send a snapshot it cannot encode, and recovers with the next one', async () => {
    const bad = makeSnapshot({ clusters: [{ name: 'c1', not_a_field: true }], endpoints: [], listeners: [], routes: [] }, 'bad');
    cache.setSnapshot('n1', bad);
    const envoy = connect('n1');
    envoy.send({ typeUrl: CDS }, true);
    await waitFor(() => ads.status().encodeFailures.length === 1);
    assert.match(ads.status().encodeFailures[0]!.message, /not_a_field: unknown field/);
    assert.equal(envoy.pending, 0);
    cache.setSnapshot('n1', snapshot('good'));
    assert.equal((await envoy.next()).versionInfo, 'good');
  });

  it('answers Delta ADS with UNIMPLEMENTED', async () => {
    const method = aggregatedDiscoveryService().DeltaAggregatedResources!;
    const call = client.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize);
    const status = await new Promise<grpc.StatusObject>((resolve) => { call.on('status', resolve); call.on('error', () => undefined); });
    assert.equal(status.code, grpc.status.UNIMPLEMENTED);
    call.end();
  });

  it('ends open streams cleanly on stop', async () => {
    cache.setSnapshot('n1', snapshot('v1'));
    const envoy = connect('n1');
    envoy.send({ typeUrl: CDS }, true);
    await envoy.next();
    await ads.stop();
    await waitFor(() => envoy.status !== undefined);
    assert.equal(envoy.status!.code, grpc.status.OK);
    assert.equal(ads.status().streams.length, 0);
  });
});

async function waitFor<T>(probe: () => T | false | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== false && v !== undefined) return v;
    if (Date.now() > deadline) throw new Error('condition not met before the deadline');
    await new Promise((r) => setTimeout(r, 10));
  }
}
