import { strict as assert } from 'node:assert';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Objm } from '@nats-io/obj';
import { NatsServer } from '../../../src/nats/server.js';
import { readBundle } from '../../../src/bundle/archive.js';
import { BundlePublisher, RevisionConflictError } from '../../../src/controlplane/publisher.js';
import { manifestRevision } from '../../../src/bundle/manifest.js';
import { verifyBundle } from '../../../src/bundle/verify.js';
import { DEFAULT_OBJECT_BUCKET } from '../../../src/bundle/pointer.js';
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
