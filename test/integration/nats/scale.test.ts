import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { startBenchCluster, type BenchCluster } from '../../../bench/nats-scale/cluster.js';
import { DEFAULT_PLAN } from '../../../bench/nats-scale/plan.js';
import { runScale } from '../../../bench/nats-scale/run.js';
import { MESH_MAX_CONSUMERS } from '../../../src/controlplane/streams.js';

/**
 * Issue 20's load tool (`make bench-nats-scale`) on a small scale: five simulated sidecars in two
 * worker processes against a real three-node TLS cluster. Its numbers must be what NATS holds:
 * every sidecar swapped in the bundle published under load, every record it counts is in the
 * stream, the budget entries hold exactly what the Checks charged, within the documented bound.
 */
describe('the NATS scale simulator against a three-node cluster', function () {
  this.timeout(90_000);
  let work: string;
  let bench: BenchCluster | undefined;

  before(() => { work = mkdtempSync(join(tmpdir(), 'tollgate-nats-scale-')); });
  after(async () => {
    await bench?.close();
    rmSync(work, { recursive: true, force: true });
  });

  it('measures propagation, lease traffic, overshoot and log latency that NATS confirms', async () => {
    bench = await startBenchCluster(work);
    const control = await bench.control.ready();
    const r = await runScale({
      servers: bench.cluster.urls, control, reader: await bench.reader.ready(), publisher: bench.publisher, signing: bench.signing, verificationKeyPem: bench.verificationKeyPem,
      bundle: bench.bundle, authzTls: bench.authzTls, workers: 2, perConnection: 1, publishes: 1, workDir: join(work, 'sim'),
      natsProcesses: bench.cluster.members.map((m, i) => ({ name: `n${i + 1}`, pid: m.pid! })),
      // Busy enough that budgets run out within the run: 4 calls a second per sidecar for 6 s.
      plan: { ...DEFAULT_PLAN, sidecars: 5, budgets: 2, callsPerSec: 4, trafficSec: 6, exhaustAt: 0.5 },
    });
    console.log(`      (propagation p50 ${r.propagation[0]?.toAll.p50.toFixed(1)} ms; ${r.lease.writesPerSec.toFixed(1)} lease writes/s; ${r.log.offered} records, publish p99 ${r.log.publishMs.p99.toFixed(1)} ms; overshoot ${r.lease.budgets.map((b) => `${b.overshoot}/${b.bound}`).join(', ')})`);

    assert.equal(r.propagation.length, 1);
    assert.equal(r.propagation[0]!.reached, 5, 'every simulated sidecar swapped in the published revision');
    assert.equal(r.propagation[0]!.toAll.n, 5);
    assert.ok(r.propagation[0]!.toAll.max > 0 && r.propagation[0]!.toAll.max < 30_000);

    assert.ok(r.log.offered >= 5 * 2 * 6 * 0.5, `records offered: ${r.log.offered}`);
    assert.equal(r.log.acked, r.log.offered, 'every record acknowledged');
    assert.equal(r.log.inStream, r.log.offered, 'the stream holds exactly the records the sidecars counted');
    assert.equal(r.log.publishMs.n, r.log.offered);

    assert.ok(r.lease.writesPerSec > 1, `lease writes/s ${r.lease.writesPerSec}`);
    assert.ok(r.calls.refused.exhausted > 0, 'the budgets ran out during the run');
    for (const b of r.lease.budgets) {
      assert.ok(b.charged > 0, `${b.name} charged nothing`);
      assert.equal(b.used, b.charged, `${b.name}: the KV entry holds what the Checks charged`);
      // Used up, but for what sits unspent in the last leases when the budget runs out.
      assert.ok(b.used >= b.limit * 0.9, `${b.name} used ${b.used} of ${b.limit}: not exhausted`);
      assert.ok(b.overshoot <= b.bound, `${b.name} overshoot ${b.overshoot} > bound ${b.bound}`);
    }
    assert.equal(r.servers.length, 3);
    for (const s of r.servers) assert.ok(s.cpuPercent > 0 && s.rssMiB > 0, `${s.name}: ${JSON.stringify(s)}`);
    assert.ok(r.streams.find((s) => s.name === 'TOLLGATE_DECISIONS')?.replicas === 3);
    // Past nats-server 2.15's default of 1,000 consumers a stream: one watch per sidecar on the pointer.
    const jsm = await jetstreamManager(control);
    for (const name of ['KV_tollgate_policy', 'OBJ_tollgate_bundles']) assert.equal((await jsm.streams.info(name)).config.max_consumers, MESH_MAX_CONSUMERS, name);
  });
});
