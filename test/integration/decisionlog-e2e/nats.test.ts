import { strict as assert } from 'node:assert';
import { readStreamEntries, type StreamEntry } from '../../../src/decisionlog/nats-reader.js';
import { NatsServer } from '../../../src/nats/server.js';
import { authzStatus, eventually, Load, logEntries, RawSession, startMesh, tollgateLogs, type Step, type TestMesh } from './support.js';

const STREAM = 'TOLLGATE_DECISIONS';
const PREFIX = 'tollgate.decisions';

/**
 * Issue 3, "Done when", central sink: authz started with `--decision-log-nats`, a real
 * nats-server stopped and restarted while calls flow through Envoy. Afterwards the JetStream
 * stream must be the local log again: every record once, in chain order, byte for byte.
 */
describe('decision log end to end: NATS stopped and restarted under load', function () {
  this.timeout(120_000);
  let nats: NatsServer;
  let t: TestMesh;
  let load: Load | null = null;

  before(async () => {
    nats = await NatsServer.start({ echo: process.env.TOLLGATE_TEST_ECHO === '1' });
    t = await startMesh('dlog-nats', ['--decision-log-nats', nats.url]);
  });
  after(async () => {
    await load?.stop();
    await t?.dispose();
    await nats?.dispose();
  });

  async function startLoad(tag: string): Promise<Load> {
    const alice = await t.mesh.token({ sub: 'alice', team: 'payments' });
    const sam = await t.mesh.token({ sub: 'sam', team: 'support' });
    const sessions = await Promise.all([0, 1, 2, 3].map((w) => RawSession.open(t.mesh.endpoints.mcp, w % 2 ? sam : alice, `${tag}-${w}`)));
    // Allowed reads and denied writes/destructive calls, from two teams.
    const steps: Step[] = sessions.map((s, w) => (n: number) => {
      const id = `${tag}-w${w}-${n}`;
      if (n % 3 === 2) return s.call(id, w % 2 ? 'run_sql' : 'delete_records', w % 2 ? { query: 'select 1' } : { table: 'invoices', where: `id = '${id}'` });
      return s.call(id, 'search_docs', { query: `load ${id}` });
    });
    const l = new Load(steps, 800);
    l.start();
    return l;
  }

  async function replicationOf(): Promise<NonNullable<NonNullable<Awaited<ReturnType<typeof authzStatus>>['decisionLog']>['replication']>> {
    const s = await authzStatus(t.mesh);
    assert.ok(s.decisionLog?.replication, 'authz reports NATS replication in /status');
    return s.decisionLog.replication;
  }

  /** Waits until authz reports every local record acknowledged by NATS (nothing in memory or on disk). */
  async function drained(): Promise<void> {
    await eventually(async () => {
      const r = await replicationOf();
      return r.pending === 0 && r.spooledBytes === 0 ? r : null;
    }, 'NATS replication to catch up with the local log', 45_000);
  }

  async function streamRecords(): Promise<StreamEntry[]> {
    const out: StreamEntry[] = [];
    for await (const r of readStreamEntries({ url: nats.url, stream: STREAM, subjectPrefix: PREFIX })) out.push(r);
    return out;
  }

  /**
   * The stream is an exact copy of the local chain (decisions and accounting records): same
   * records, same order, same bytes, once each.
   */
  async function assertStreamIsTheLog(): Promise<{ records: number; stream: number }> {
    const local = logEntries(t.logDir);
    const got = await streamRecords();
    assert.deepEqual(local.map((r) => r.record.seq), local.map((_, i) => i + 1), 'the local chain has no gaps');
    assert.deepEqual(got.map((r) => r.record.seq), local.map((r) => r.record.seq), 'stream = local log: same seqs, in order, no duplicates, nothing lost');
    got.forEach((r, i) => {
      assert.equal(r.line, local[i]!.line, `seq ${r.record.seq}: the stream holds the record byte for byte`);
      assert.equal(r.msgId, `${r.record.decision_id}:${r.record.seq}`);
      assert.equal(r.subject, `${PREFIX}.default.demo`);
    });
    return { records: local.length, stream: got.length };
  }

  it('nats-server stopped and restarted mid-load: the stream ends up holding exactly the local log', async () => {
    load = await startLoad('a');
    let down = { pending: 0, spooledBytes: 0 };
    try {
      await load.until(() => load!.answered >= 100, '100 answers with NATS up');
      await eventually(async () => ((await replicationOf()).published > 0 ? true : null), 'first records published to NATS');
      await nats.stop();
      const atStop = load.answered;
      await load.until(() => load!.answered >= atStop + 150, '150 answers while NATS is down');
      down = await replicationOf();
      // Authz keeps answering with NATS down; what NATS has not acknowledged waits in authz.
      assert.ok(down.pending > 0, 'records wait for NATS while it is down');
      await nats.restart();
      const atRestart = load.answered;
      await load.until(() => load!.answered >= atRestart + 150, '150 answers after NATS is back');
    } finally {
      await load.stop();
    }
    assert.equal(load.count('unexpected'), 0, JSON.stringify(load.outcomes.filter((o) => o.kind === 'unexpected').slice(0, 3)));
    assert.equal(load.count('refused', 'failed'), 0, 'NATS being down never costs a call: authz answers from its local log');
    await drained();
    const n = await assertStreamIsTheLog();
    const r = await replicationOf();
    console.log(`      answered ${load.answered} calls (${load.count('allowed')} allowed, ${load.count('denied')} denied); while NATS was down ${down.pending} records waited ` +
      `(${down.spooledBytes} bytes spooled on disk); local log ${n.records} records = stream ${n.stream} messages; publishes ${r.published}, failures ${r.failures}, dropped ${r.dropped}`);
    assert.equal(r.dropped, 0);
  });

  it('authz killed while NATS is down, then both restarted: the spooled records still arrive once, in order', async () => {
    await nats.stop();
    load = await startLoad('b');
    let before = { pending: 0, spooledBytes: 0 };
    try {
      await load.until(() => load!.answered >= 150, '150 answers while NATS is down');
      before = await replicationOf();
      t.mesh.authz.kill('SIGKILL');
      await t.mesh.authz.exited;
      await t.mesh.restartAuthz();
      const atRestart = load.answered;
      await load.until(() => load!.answered >= atRestart + 100, '100 answers from the restarted authz, NATS still down');
      await nats.restart();
      const back = load.answered;
      await load.until(() => load!.answered >= back + 100, '100 answers after NATS is back');
    } finally {
      await load.stop();
    }
    assert.equal(load.count('unexpected'), 0);
    await drained();
    const n = await assertStreamIsTheLog();

    // The review commands read the central copy the same way as the local one.
    const fromNats = await tollgateLogs(['query', '--nats', nats.url, '--json']);
    const fromDir = await tollgateLogs(['query', '--dir', t.logDir, '--json']);
    assert.equal(fromNats.code, 0, fromNats.err);
    assert.equal(fromNats.out, fromDir.out, '`logs query --nats` = `logs query --dir`');
    console.log(`      ${before.pending} records pending (${before.spooledBytes} bytes spooled) when authz was killed; local log ${n.records} records = stream ${n.stream} messages`);
  });
});
