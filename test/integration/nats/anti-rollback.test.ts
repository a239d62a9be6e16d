import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kvm, type KV } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import { MAX_REVISION } from '../../../src/bundle/revision.js';
import { encodePointer, type BundlePointer } from '../../../src/bundle/pointer.js';
import { PolicyControlPlane, type PointerCorrectedEvent } from '../../../src/controlplane/serve.js';
import { PolicyHolder } from '../../../src/policy/holder.js';
import { NatsBundleSource } from '../../../src/policy/sources/nats.js';
import { NatsServer } from '../../../src/nats/server.js';
import { keyPair } from '../../unit/bundle/fixtures.js';
import { waitFor, writePolicy } from '../controlplane/support.js';
import { closeLinks, plainLink } from '../../support/nats-link.js';

/**
 * The two attacks of issue 10 on the bundle pointer, by someone who can write the KV bucket (on a
 * secured mesh: a stolen control-plane credential or a NATS operator; here a plain NATS):
 * (a) moving the pointer back to an older signed bundle, (b) setting a huge revision to freeze
 * policy. Real control plane (opa build, signing, publishing), real bundle sources, real NATS.
 */
describe('anti-rollback of policy bundles across restarts', function () {
  this.timeout(120000);
  let work: string;
  let nats: NatsServer;
  let keys: Awaited<ReturnType<typeof keyPair>>;
  let pointerKv: KV;
  const running: Array<{ stop(): Promise<void> }> = [];

  beforeEach(async () => {
    work = mkdtempSync(join(tmpdir(), 'tollgate-rollback-'));
    keys = await keyPair('EdDSA');
    nats = await NatsServer.start();
    pointerKv = await new Kvm(await plainLink(nats.url, 'attacker').ready()).create('tollgate_policy');
  });
  afterEach(async () => {
    for (const r of running.splice(0).reverse()) await r.stop().catch(() => undefined);
    await closeLinks();
    await nats.dispose();
    rmSync(work, { recursive: true, force: true });
  });

  const policies = (): string => join(work, 'policies');
  /** Past the authz sources' settleMs: the newest object is no longer "a publish under way". */
  const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 400));

  function controlPlane(): { cp: PolicyControlPlane; published: BundlePointer[]; corrections: PointerCorrectedEvent[] } {
    const cp = new PolicyControlPlane({
      policiesDir: policies(), signingKey: keys.signing, nats: plainLink(nats.url, 'controlplane'),
      stateFile: join(work, 'cp', 'controlplane-revision.json'), debounceMs: 50, pollMs: 300, retryMs: 200,
    });
    const published: BundlePointer[] = [];
    const corrections: PointerCorrectedEvent[] = [];
    cp.on('published', (e) => published.push(e.pointer));
    cp.on('pointer-corrected', (e) => corrections.push(e));
    running.push(cp);
    return { cp, published, corrections };
  }

  function authz(stateDir: string): { src: NatsBundleSource; holder: PolicyHolder; swaps: string[] } {
    const holder = new PolicyHolder();
    const swaps: string[] = [];
    holder.onSwap((rev) => swaps.push(rev));
    const src = new NatsBundleSource({
      holder, nats: plainLink(nats.url, `authz ${stateDir}`), keys: [keys.verification],
      stateFile: join(work, stateDir, 'policy-revision.json'), retryMs: 200, settleMs: 300, pollMs: 500,
    });
    running.push(src);
    return { src, holder, swaps };
  }

  async function publishThree(c: ReturnType<typeof controlPlane>): Promise<void> {
    writePolicy(policies(), ['a']);
    await c.cp.start();
    writePolicy(policies(), ['a', 'b']);
    await waitFor(() => c.published.length === 2, 'revision 2', () => c.cp.status());
    writePolicy(policies(), ['a', 'b', 'c']);
    await waitFor(() => c.published.length === 3, 'revision 3', () => c.cp.status());
  }

  const pointerNow = async (): Promise<BundlePointer> => JSON.parse(Buffer.from((await pointerKv.get('current'))!.value).toString()) as BundlePointer;

  it('(a) a pointer moved back: corrected and alerted; a fresh authz loads the newest; a restarted one refuses the old', async () => {
    const c = controlPlane();
    await publishThree(c);
    const [rev1, , rev3] = c.published as [BundlePointer, BundlePointer, BundlePointer];
    const a = authz('authz-a');
    await a.src.start();
    await waitFor(() => a.holder.get()?.revision === '3', 'authz A on revision 3', () => a.src.status());

    // The attack while the control plane watches: it puts the pointer back and says so.
    await pointerKv.put('current', encodePointer(rev1));
    await waitFor(async () => (await pointerNow()).revision === 3 && c.corrections.length > 0, 'the pointer put back', () => c.corrections);
    assert.match(c.corrections[0]!.found, /revision 1 .*moved backwards from revision 3/);
    assert.equal(c.corrections[0]!.restored, 3);
    assert.equal(c.cp.status().pointerCorrections, c.corrections.length);
    assert.equal(a.holder.get()!.revision, '3', 'the running authz never went back');

    // With the control plane down, nobody puts it back: a fresh authz still loads the newest.
    await c.cp.stop();
    await pointerKv.put('current', encodePointer(rev1));
    await settle();
    const b = authz('authz-b');
    await b.src.start();
    await waitFor(() => b.holder.get()?.revision === '3', 'fresh authz B on revision 3', () => b.src.status());
    assert.deepEqual(b.swaps, ['3'], 'revision 1 was never in force, not even for a moment');

    // Worse: the newer bundles are gone too (this takes the object store's credential). A fresh
    // authz can only load what is there, but one that accepted revision 3 before refuses it.
    const store = await new Objm(await plainLink(nats.url, 'attacker').ready()).open('tollgate_bundles');
    for (const o of await store.list()) if (o.name !== rev1.object) await store.delete(o.name);
    await a.src.stop();
    const restarted = authz('authz-a');
    await restarted.src.start();
    await waitFor(() => restarted.src.status().rollbacks! >= 1, 'the old revision refused', () => restarted.src.status());
    assert.equal(restarted.holder.get(), null, 'no policy: every call is refused (fail closed), not revision 1');
    assert.match(restarted.src.status().lastError!.message, /revision 1 .*not newer than revision 3 accepted before this restart/);

    // The control plane comes back: it numbers from what it persisted, and authz follows.
    const again = controlPlane();
    await again.cp.start();
    writePolicy(policies(), ['a', 'b', 'c', 'd']);
    await waitFor(() => again.published.some((p) => p.revision === 4), 'revision 4 published', () => again.cp.status());
    await waitFor(() => restarted.holder.get()?.revision === '4', 'the restarted authz on revision 4', () => restarted.src.status());
    assert.ok(rev3.revision < 4);
  });

  it('(b) a pointer set to 2^53−1 or to the largest revision cannot freeze policy', async () => {
    const c = controlPlane();
    await publishThree(c);
    const rev3 = c.published[2]!;
    const a = authz('authz-a');
    await a.src.start();
    await waitFor(() => a.holder.get()?.revision === '3', 'authz on revision 3', () => a.src.status());

    for (const [i, revision] of [2 ** 53 - 1, MAX_REVISION].entries()) {
      await pointerKv.put('current', encodePointer({ ...rev3, revision }));
      await waitFor(() => c.corrections.length > i, `the pointer at ${revision} corrected`, () => c.corrections);
      await waitFor(async () => (await pointerNow()).revision === rev3.revision + i, 'the pointer back on the newest revision');
      // The next edit is published as the next revision, and authz follows: nothing froze.
      writePolicy(policies(), ['a', 'b', 'c', `x${i}`]);
      await waitFor(() => c.published.length === 4 + i, `revision ${4 + i} published`, () => c.cp.status());
      assert.equal(c.published[3 + i]!.revision, 4 + i);
      await waitFor(() => a.holder.get()?.revision === String(4 + i), `authz on revision ${4 + i}`, () => a.src.status());
    }
    assert.match(c.corrections[0]!.found, /invalid pointer .*"revision" must be an integer from 1 to 999999999999/);

    // A fresh authz facing a made-up pointer, with no control plane to fix it, loads the newest.
    await c.cp.stop();
    await pointerKv.put('current', encodePointer({ ...rev3, revision: 2 ** 53 - 1 }));
    await settle();
    const b = authz('authz-b');
    await b.src.start();
    await waitFor(() => b.holder.get()?.revision === '5', 'fresh authz on revision 5', () => b.src.status());
    assert.deepEqual(b.swaps, ['5']);
  });
});
