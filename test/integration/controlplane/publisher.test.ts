import { strict as assert } from 'node:assert';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Objm } from '@nats-io/obj';
import { NatsServer } from '../../../src/nats/server.js';
import { readBundle } from '../../../src/bundle/archive.js';
import { BundlePublisher, RevisionConflictError } from '../../../src/controlplane/publisher.js';
import { contentDigest, manifestRevision } from '../../../src/bundle/manifest.js';
import { verifyBundle } from '../../../src/bundle/verify.js';
import { DEFAULT_OBJECT_BUCKET, DEFAULT_POINTER_KEY, encodePointer } from '../../../src/bundle/pointer.js';
import { keyPair, sampleBundle } from '../../unit/bundle/fixtures.js';

describe('bundle publisher on real NATS JetStream', function () {
  this.timeout(60000);
  let srv: NatsServer;
  const conns: NatsConnection[] = [];
  const nc = async (): Promise<NatsConnection> => {
    const c = await connect({ servers: srv.url });
    conns.push(c);
    return c;
  };

  beforeEach(async () => { srv = await NatsServer.start(); });
  afterEach(async () => {
    for (const c of conns.splice(0)) await c.close().catch(() => undefined);
    await srv.dispose();
  });

  it('stores signed bytes and a pointer whose revision is signed into the manifest', async () => {
    const keys = await keyPair('EdDSA');
    const pub = await BundlePublisher.open(await nc());
    assert.equal(await pub.current(), null);
    const p = await pub.publish(sampleBundle(), keys.signing);
    assert.equal(p.revision, 1);
    assert.equal(p.kid, keys.signing.kid);
    assert.deepEqual(await pub.current(), p);
    const bytes = await (await new Objm(await nc()).open(DEFAULT_OBJECT_BUCKET)).getBlob(p.object);
    assert.ok(bytes);
    assert.equal(bytes.length, p.size);
    const v = await verifyBundle(await readBundle(Buffer.from(bytes)), { keys: [keys.verification] });
    assert.equal(manifestRevision(v.files), '1');
  });

  it('keeps revisions increasing across publisher and NATS restarts', async () => {
    const keys = await keyPair('ES256');
    let pub = await BundlePublisher.open(await nc());
    assert.equal((await pub.publish(sampleBundle(), keys.signing)).revision, 1);
    assert.equal((await pub.publish(sampleBundle(), keys.signing)).revision, 2);
    pub = await BundlePublisher.open(await nc());
    assert.equal((await pub.publish(sampleBundle(), keys.signing)).revision, 3);
    for (const c of conns.splice(0)) await c.close();
    await srv.restart();
    pub = await BundlePublisher.open(await nc());
    assert.equal((await pub.current())?.revision, 3);
    assert.equal((await pub.publish(sampleBundle(), keys.signing)).revision, 4);
  });

  it('two control planes racing never publish the same revision', async () => {
    const keys = await keyPair('EdDSA');
    const a = await BundlePublisher.open(await nc());
    const b = await BundlePublisher.open(await nc());
    const results = await Promise.all([
      a.publish(sampleBundle(), keys.signing), b.publish(sampleBundle(), keys.signing),
      a.publish(sampleBundle(), keys.signing), b.publish(sampleBundle(), keys.signing),
    ]);
    // Unique and only moving forward; a number lost to a lost race may be skipped (revisions are
    // numbered above every stored bundle and the persisted floor, never reused).
    const revs = results.map((r) => r.revision).sort((a, b) => a - b);
    assert.equal(new Set(revs).size, 4, `two publishes shared a revision: ${revs.join(', ')}`);
    assert.equal(revs[0], 1);
    assert.equal((await a.current())?.revision, revs[3], "the pointer names the highest revision");
  });

  it('publishOnce: control planes with one key and the same sources publish them once, whatever the interleaving', async () => {
    const keys = await keyPair('ES256');
    const [a, b, c] = await Promise.all([BundlePublisher.open(await nc()), BundlePublisher.open(await nc()), BundlePublisher.open(await nc())]);
    // Concurrent: both read an empty pointer; whichever loses the race finds the winner's bundle.
    const raced = await Promise.all([a.publishOnce(sampleBundle(), keys.signing), b.publishOnce(sampleBundle(), keys.signing)]);
    assert.deepEqual(raced.map((r) => r.published).sort(), [false, true]);
    assert.deepEqual(raced.map((r) => r.pointer.revision), [1, 1]);
    // Later, with no race: nothing new either.
    const later = await c.publishOnce(sampleBundle(), keys.signing);
    assert.deepEqual([later.published, later.pointer.revision], [false, 1]);
    // Other sources are a new revision, published by whoever builds them first.
    const other = sampleBundle();
    other.set('/data.json', Buffer.from('{"tools": {}}\n'));
    const changed = await Promise.all([b.publishOnce(other, keys.signing), c.publishOnce(other, keys.signing), a.publishOnce(other, keys.signing)]);
    assert.equal(changed.filter((r) => r.published).length, 1);
    assert.deepEqual(changed.map((r) => r.pointer.revision), [2, 2, 2]);
    const stored = (await (await new Objm(await nc()).open(DEFAULT_OBJECT_BUCKET)).list()).filter((i) => !i.deleted);
    assert.equal(stored.length, 2, `one bundle per content: ${stored.map((i) => i.name).join(', ')}`);
  });

  it('publishOnce adopts only a verified bundle of its own key whose content really matches', async () => {
    const keys = await keyPair('EdDSA');
    const other = await keyPair('EdDSA');
    const pub = await BundlePublisher.open(await nc());
    const first = await pub.publishOnce(sampleBundle(), keys.signing);
    // Same content under another key: that key's control plane publishes its own revision.
    const byOther = await pub.publishOnce(sampleBundle(), other.signing);
    assert.deepEqual([byOther.published, byOther.pointer.revision], [true, 2]);
    // A pointer that claims new content but names the old bundle: the claim is not believed.
    const changed = sampleBundle();
    changed.set('/data.json', Buffer.from('{"tools": {"c": 3}}\n'));
    await pub.pointerKv.put(DEFAULT_POINTER_KEY, encodePointer({ ...first.pointer, revision: 2, content_sha256: contentDigest(changed), kid: keys.signing.kid }));
    const r = await pub.publishOnce(changed, keys.signing);
    assert.equal(r.published, true);
    assert.equal(r.pointer.revision, 3);
    const bytes = await (await new Objm(await nc()).open(DEFAULT_OBJECT_BUCKET)).getBlob(r.pointer.object);
    const v = await verifyBundle(await readBundle(Buffer.from(bytes!)), { keys: [keys.verification] });
    assert.equal(contentDigest(v.files), contentDigest(changed));
  });

  it('refuses to point at a revision that is not newer', async () => {
    const keys = await keyPair('EdDSA');
    const pub = await BundlePublisher.open(await nc());
    await pub.publish(sampleBundle(), keys.signing);
    await pub.publish(sampleBundle(), keys.signing);
    await assert.rejects(pub.publishSigned(Buffer.from('x'), 2), (e: unknown) => e instanceof RevisionConflictError && /revision 2 is not newer than the current revision 2/.test(e.message));
  });

  it('deletes bundle objects older than the ones it keeps', async () => {
    const keys = await keyPair('EdDSA');
    const pub = await BundlePublisher.open(await nc(), { keep: 3 });
    for (let i = 0; i < 6; i++) await pub.publish(sampleBundle(), keys.signing);
    const names = (await (await new Objm(await nc()).open(DEFAULT_OBJECT_BUCKET)).list()).filter((o) => !o.deleted).map((o) => o.name).sort();
    assert.deepEqual(names.map((n) => Number(n.split('/')[1]!.split('-')[0])), [4, 5, 6]);
  });
});
