import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { jetstreamManager } from '@nats-io/jetstream';
import { BundlePublisher } from '../../../src/controlplane/publisher.js';
import { provisionStreams } from '../../../src/controlplane/streams.js';
import { createDecisionSink } from '../../../src/decisionlog/config.js';
import { readStreamRecords } from '../../../src/decisionlog/nats-reader.js';
import type { NatsReplica } from '../../../src/decisionlog/nats-sink.js';
import { readRecords } from '../../../src/decisionlog/reader.js';
import { NatsLink } from '../../../src/nats/connect.js';
import { issueNatsCredentials } from '../../../src/nats/credentials.js';
import { LocalPki } from '../../../src/pki/index.js';
import { readBundle } from '../../../src/bundle/archive.js';
import { buildPolicyBundle } from '../../../src/policy/build.js';
import { PolicyHolder } from '../../../src/policy/holder.js';
import { NatsBundleSource } from '../../../src/policy/sources/nats.js';
import { NatsCluster } from '../../../src/nats/server.js';
import { keyPair } from '../../unit/bundle/fixtures.js';
import { sampleDraft } from '../../unit/decisionlog/fixtures.js';
import { waitFor, writePolicy } from '../controlplane/support.js';

/**
 * Issue 20's first bullet: three nats-server processes with TLS routes on loopback, streams and
 * buckets with 3 replicas, every client given all three seeds. The leader of the decision stream
 * is SIGKILLed while an authz-like writer appends records and the control plane publishes.
 */
describe('a three-node NATS cluster losing its stream leader under load', function () {
  this.timeout(120000);
  let work: string;
  let cluster: NatsCluster;
  const links: NatsLink[] = [];

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'tollgate-nats-cluster-'));
  });
  after(async () => {
    for (const l of links.splice(0)) await l.close();
    await cluster?.dispose();
    rmSync(work, { recursive: true, force: true });
  });

  it('loses and duplicates no decision record, keeps bundles flowing, and never makes append wait', async () => {
    const creds = await issueNatsCredentials(await LocalPki.open(join(work, 'pki')), [
      { name: 'controlplane', role: 'controlplane' }, { name: 'authz', role: 'authz' }, { name: 'reviewer', role: 'reviewer' },
    ]);
    cluster = await NatsCluster.start({ size: 3, tls: creds.server, users: creds.users, storeDir: join(work, 'nats') });
    const link = (name: string): NatsLink => {
      const l = NatsLink.open({ servers: cluster.urls, tls: creds.clients.get(name)!.tls }, { name });
      links.push(l);
      return l;
    };
    const cpNc = await link('controlplane').ready(20000);
    // The cluster elects its JetStream meta leader first; provisioning waits for it.
    await waitFor(async () => provisionStreams(cpNc, () => undefined, 3).then(() => true, () => false), 'streams created with 3 replicas', () => '', 30000);
    const jsm = await jetstreamManager(cpNc);
    assert.equal((await jsm.streams.info('TOLLGATE_DECISIONS')).config.num_replicas, 3);

    const keys = await keyPair('EdDSA');
    writePolicy(join(work, 'p1'), ['a']);
    writePolicy(join(work, 'p2'), ['a', 'b']);
    const bundle1 = await readBundle(await buildPolicyBundle(join(work, 'p1')));
    const bundle2 = await readBundle(await buildPolicyBundle(join(work, 'p2')));
    const publisher = await BundlePublisher.open(cpNc, { replicas: 3 });
    await publisher.publish(bundle1, keys.signing);

    const authz = link('authz');
    const holder = new PolicyHolder();
    const source = new NatsBundleSource({ holder, nats: authz, keys: [keys.verification], retryMs: 200, pollMs: 1000 });
    await source.start();
    const dir = join(work, 'decisions');
    const sink = await createDecisionSink({ dir, nats: { url: cluster.urls.join(','), queueDir: join(work, 'spool'), publishTimeoutMs: 2000 } }, { link: authz, warn: () => undefined });
    const replica = sink.replicas[0] as NatsReplica;
    try {
      assert.equal(await source.whenLoaded(), '1');
      let i = 0;
      let worstAppendMs = 0;
      let stop = false;
      const writer = (async () => {
        while (!stop) {
          const t0 = performance.now();
          sink.append(sampleDraft({ i: ++i, server: 'demo' }));
          worstAppendMs = Math.max(worstAppendMs, performance.now() - t0);
          await new Promise((r) => setTimeout(r, 3));
        }
      })();
      await waitFor(() => replica.stats().ackedSeq >= 100, '100 records replicated', () => replica.stats());

      const leaderName = (await jsm.streams.info('TOLLGATE_DECISIONS')).cluster?.leader;
      assert.ok(leaderName, 'the stream has a leader');
      const leader = cluster.byName(leaderName);
      assert.ok(leader, `leader ${leaderName} is one of ours`);
      await leader.kill();
      const killedAt = i;

      // Bundles keep flowing through the surviving two (the publisher reconnects by itself).
      await waitFor(async () => publisher.publish(bundle2, keys.signing).then(() => true, () => false), 'revision 2 published after the kill', () => '', 30000);
      await waitFor(() => holder.get()?.revision === '2', 'authz on revision 2', () => source.status(), 30000);
      await waitFor(() => i >= killedAt + 300, '300 more records appended after the kill', () => i);
      stop = true;
      await writer;
      await Promise.race([replica.drained(), new Promise((_, rej) => setTimeout(() => rej(new Error(`not drained: ${JSON.stringify(replica.stats())}`)), 45000))]);

      const local = [...readRecords(dir)].map((r) => r.record.seq);
      const got: number[] = [];
      const reviewer = link('reviewer');
      for await (const r of readStreamRecords({ link: reviewer, stream: 'TOLLGATE_DECISIONS', subjectPrefix: 'tollgate.decisions' })) got.push(r.record.seq);
      assert.equal(local.length, i);
      assert.deepEqual(got, local, 'the stream holds every record once, in order');
      // Check appends to the local log and hands the record to the replica: NATS never in the way.
      assert.ok(worstAppendMs < 100, `worst append ${worstAppendMs.toFixed(1)} ms`);
      console.log(`      (${i} records, leader ${leaderName} killed after ${killedAt}; worst append ${worstAppendMs.toFixed(1)} ms; publish failures ${replica.stats().failures}, duplicates acked ${replica.stats().duplicates})`);
    } finally {
      await source.stop();
      await sink.close();
    }
  });
});
