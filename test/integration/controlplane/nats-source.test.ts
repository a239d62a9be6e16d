import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { NatsServer } from '../../../src/nats/server.js';
import { freePort } from '../../../src/util/net.js';
import { readBundle, writeBundle, type BundleFiles } from '../../../src/bundle/archive.js';
import { buildPolicyBundle } from '../../../src/policy/build.js';
import { PolicyHolder } from '../../../src/policy/holder.js';
import { NatsBundleSource } from '../../../src/policy/sources/nats.js';
import { BundlePublisher } from '../../../src/controlplane/publisher.js';
import { signBundle } from '../../../src/bundle/sign.js';
import { withRevision } from '../../../src/bundle/manifest.js';
import { DEFAULT_OBJECT_BUCKET } from '../../../src/bundle/pointer.js';
import { Objm } from '@nats-io/obj';
import { keyPair } from '../../unit/bundle/fixtures.js';
import { toolInput, waitFor, writePolicy } from './support.js';
import { closeLinks, plainLink } from '../../support/nats-link.js';

describe('NATS bundle source with real nats-server', function () {
  this.timeout(90000);
  let work: string;
  let bundleA: BundleFiles; // allows tool "a"
  let bundleB: BundleFiles; // allows tool "b"
  let keys: Awaited<ReturnType<typeof keyPair>>;
  let srv: NatsServer;
  const conns: NatsConnection[] = [];
  const sources: NatsBundleSource[] = [];

  const publisher = async (): Promise<BundlePublisher> => {
    const nc = await connect({ servers: srv.url });
    conns.push(nc);
    return BundlePublisher.open(nc);
  };
  const source = (holder: PolicyHolder, url = srv.url): NatsBundleSource => {
    const s = new NatsBundleSource({ holder, nats: plainLink(url), keys: [keys.verification], retryMs: 200 });
    sources.push(s);
    return s;
  };
  const allows = (holder: PolicyHolder, tool: string): boolean => holder.get()!.evaluate(toolInput(tool)).allow;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'tollgate-nats-source-'));
    writePolicy(join(work, 'a'), ['a']);
    writePolicy(join(work, 'b'), ['b']);
    bundleA = await readBundle(await buildPolicyBundle(join(work, 'a')));
    bundleB = await readBundle(await buildPolicyBundle(join(work, 'b')));
    keys = await keyPair('EdDSA');
  });
  after(() => rmSync(work, { recursive: true, force: true }));
  beforeEach(async () => { srv = await NatsServer.start(); });
  afterEach(async () => {
    for (const s of sources.splice(0)) await s.stop();
    for (const c of conns.splice(0)) await c.close().catch(() => undefined);
    await closeLinks();
    await srv.dispose();
  });

  it('loads a published bundle and swaps it in', async () => {
    const pub = await publisher();
    await pub.publish(bundleA, keys.signing);
    const holder = new PolicyHolder();
    const src = source(holder);
    await src.start();
    assert.equal(await src.whenLoaded(), '1');
    assert.equal(holder.get()!.revision, '1');
    assert.equal(allows(holder, 'a'), true);
    assert.equal(allows(holder, 'b'), false);

    await pub.publish(bundleB, keys.signing);
    await waitFor(() => holder.get()!.revision === '2', 'revision 2', () => src.status());
    assert.equal(allows(holder, 'a'), false);
    assert.equal(allows(holder, 'b'), true);
    assert.deepEqual({ ...src.status(), loadedAt: null }, { kind: 'nats', revision: '2', loadedAt: null, swaps: 2, rejections: 0, lastError: null, sourceError: null, rollbacks: 0 });
  });

  it('ten publishes in a row: every swap seen, in order, ending on the last', async () => {
    const pub = await publisher();
    await pub.publish(bundleA, keys.signing);
    const holder = new PolicyHolder();
    const swaps: string[] = [];
    holder.onSwap((rev) => swaps.push(rev));
    const src = source(holder);
    await src.start();
    await src.whenLoaded();
    for (let i = 0; i < 10; i++) await pub.publish(i % 2 === 0 ? bundleB : bundleA, keys.signing);
    await waitFor(() => holder.get()!.revision === '11', 'revision 11', () => ({ swaps, status: src.status() }));
    assert.deepEqual(swaps, ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11']);
    assert.equal(allows(holder, 'a'), true); // revision 11 is bundle A
    assert.equal(src.status().rejections, 0);
  });

  it('rejects a tampered object and keeps serving the previous revision', async () => {
    const pub = await publisher();
    await pub.publish(bundleA, keys.signing);
    const holder = new PolicyHolder();
    const src = source(holder);
    const rejected: string[] = [];
    src.events.on('rejected', (e) => rejected.push(e.message));
    await src.start();
    await src.whenLoaded();

    // Revision 2, properly signed, then data.json edited after signing.
    const signed = await signBundle(withRevision(bundleA, '2'), keys.signing);
    signed.set('/data.json', Buffer.from(JSON.stringify({ allowed_tools: ['a', 'delete_records'] })));
    await pub.publishSigned(await writeBundle(signed), 2);
    await waitFor(() => src.status().rejections === 1, 'a rejection', () => src.status());
    assert.equal(holder.get()!.revision, '1');
    assert.equal(allows(holder, 'delete_records'), false);
    assert.match(rejected[0]!, /^bundle revision 2 from nats tollgate_policy\/current rejected: \/data\.json: SHA-256 digest mismatch/);
    assert.equal(src.status().lastError!.revision, '2');
    assert.equal(holder.lastError!.revision, '2');
    assert.match(holder.lastError!.message, /digest mismatch/);

    // The next good publish goes through.
    await pub.publish(bundleB, keys.signing);
    await waitFor(() => holder.get()!.revision === '3', 'revision 3', () => src.status());
  });

  it('rejects a bundle signed by an unknown key, a replayed old bundle and a WASM that does not load', async () => {
    const pub = await publisher();
    const first = await pub.publish(bundleA, keys.signing);
    const holder = new PolicyHolder();
    const src = source(holder);
    await src.start();
    await src.whenLoaded();
    const nextRejection = async (n: number): Promise<string> => {
      await waitFor(() => src.status().rejections === n, `rejection ${n}`, () => src.status());
      return src.status().lastError!.message;
    };

    const stranger = await keyPair('EdDSA');
    await pub.publishSigned(await writeBundle(await signBundle(withRevision(bundleB, '2'), stranger.signing)), 2);
    assert.match(await nextRejection(1), /signed with key id "[^"]+", which is not a configured verification key/);

    // Revision 1's validly signed bytes, pointed at as revision 3: a rollback attempt.
    const oldBytes = Buffer.from((await (await new Objm(conns[0]!).open(DEFAULT_OBJECT_BUCKET)).getBlob(first.object))!);
    await pub.publishSigned(oldBytes, 3);
    assert.match(await nextRejection(2), /signed manifest says revision 1 but the pointer says 3/);

    const broken = withRevision(bundleB, '4');
    broken.set('/policy.wasm', Buffer.from('not webassembly'));
    await pub.publishSigned(await writeBundle(await signBundle(broken, keys.signing)), 4);
    assert.match(await nextRejection(3), /^bundle revision 4 from nats tollgate_policy\/current rejected: .*not a valid WebAssembly module/);

    assert.equal(holder.get()!.revision, '1');
    assert.equal(allows(holder, 'a'), true);
  });

  it('reconnects after a NATS restart and picks up a revision published afterwards', async () => {
    const pub1 = await publisher();
    await pub1.publish(bundleA, keys.signing);
    const holder = new PolicyHolder();
    const src = source(holder);
    await src.start();
    await src.whenLoaded();

    await srv.stop();
    await waitFor(() => src.status().sourceError !== null, 'the source to notice', () => src.status());
    assert.equal(holder.get()!.revision, '1'); // still serving
    await srv.restart();
    const pub2 = await publisher();
    await pub2.publish(bundleB, keys.signing);
    await waitFor(() => holder.get()!.revision === '2', 'revision 2 after restart', () => src.status());
    assert.equal(allows(holder, 'b'), true);
  });

  it('the pointer bucket deleted and made again (a NATS rebuilt without its data): the read error clears and the new pointer is followed', async () => {
    const pub = await publisher();
    await pub.publish(bundleA, keys.signing);
    const holder = new PolicyHolder();
    const src = new NatsBundleSource({ holder, nats: plainLink(srv.url), keys: [keys.verification], retryMs: 200, pollMs: 200 });
    sources.push(src);
    await src.start();
    await src.whenLoaded();
    // The pointer's stream goes away under the source (as a leader change makes reads time out).
    const jsm = await jetstreamManager(conns[0]!);
    await jsm.streams.delete('KV_tollgate_policy');
    await waitFor(() => /cannot read pointer tollgate_policy\/current/.test(src.status().sourceError ?? ''), 'the failed read to show', () => src.status());
    // Made again by the control plane, with sequence numbers starting over: followed, and the
    // failed read no longer reported.
    const again = await publisher();
    await again.publish(bundleB, keys.signing);
    await waitFor(() => holder.get()!.revision === '2' && src.status().sourceError === null, 'revision 2 and no source error', () => src.status());
  });

  it('starts with NATS down: holder stays empty (fail closed) until NATS and a bundle arrive', async () => {
    const port = await freePort();
    const holder = new PolicyHolder();
    const src = source(holder, `nats://127.0.0.1:${port}`);
    await src.start();
    await waitFor(() => src.status().sourceError !== 'not connected yet', 'a connection error', () => src.status());
    assert.equal(holder.get(), null);
    assert.match(src.status().sourceError!, /^NATS tollgate_policy\/current: /);

    const late = await NatsServer.start({ port });
    try {
      const nc = await connect({ servers: late.url });
      conns.push(nc);
      await (await BundlePublisher.open(nc)).publish(bundleA, keys.signing);
      assert.equal(await src.whenLoaded(), '1');
      assert.equal(allows(holder, 'a'), true);
    } finally {
      await src.stop();
      await late.dispose();
    }
  });
});
