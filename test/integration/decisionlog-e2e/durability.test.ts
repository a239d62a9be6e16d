import { strict as assert } from 'node:assert';
import type { VerifyReport } from '../../../src/decisionlog/verify.js';
import { carriesDecisionId, indexLog, logEntries, keepPublicKey, Load, RawSession, startMesh, tollgateLogs, type Outcome, type Step, type TestMesh } from './support.js';

/**
 * Issue 3, "Done when", durability: once a response has left authz, its record survives kill -9
 * of authz. Driven through the real mesh (Envoy → authz process → demo MCP server), with authz
 * SIGKILLed while four sessions keep calling, then restarted while they still do.
 */
describe('decision log end to end: kill -9 of authz under load', function () {
  this.timeout(120_000);
  let t: TestMesh;

  before(async () => { t = await startMesh('dlog-kill'); });
  after(async () => { await t?.dispose(); });

  it('every answer authz gave is in the log, Envoy\'s own refusals name no decision, and the chain verifies across the crash', async () => {
    const { mesh } = t;
    const trustedKey = keepPublicKey(t);
    const alice = await mesh.token({ sub: 'alice', team: 'payments' });
    const expired = await mesh.token({ sub: 'mallory', team: 'payments', ttlSec: -600 });
    const sessions = await Promise.all([0, 1, 2, 3].map((w) => RawSession.open(mesh.endpoints.mcp, alice, `load-${w}`)));

    // Mostly allowed reads; every 4th a destructive call the policy denies; every 10th a refusal
    // before policy (expired token), and one in 20 a body that is not JSON. Each JSON-RPC id is
    // unique, so each answer finds its record.
    const steps: Step[] = sessions.map((s, w) => (n: number) => {
      const id = `w${w}-${n}`;
      if (n % 10 === 9) return s.call(id, 'search_docs', { query: id }, expired);
      if (n % 20 === 5) return s.post(id, `{"jsonrpc":"2.0","id":"${id}","method":`);
      if (n % 4 === 3) return s.call(id, 'delete_records', { table: 'invoices', where: `id = '${id}'` });
      return s.call(id, 'search_docs', { query: `load ${id}` });
    });
    const load = new Load(steps, 800);
    let killAt = 0;
    let restartAt = 0;
    load.start();
    try {
      await load.until(() => load.answered >= 150, '150 answers from authz before the kill');
      mesh.authz.kill('SIGKILL');
      await mesh.authz.exited;
      killAt = load.outcomes.length;
      const downAnswers = (): number => load.outcomes.slice(killAt).filter((o) => o.kind === 'refused' || o.kind === 'failed').length;
      await load.until(() => downAnswers() >= 20, 'Envoy refusals while authz is down');
      await mesh.restartAuthz();
      restartAt = load.outcomes.length;
      const answeredAtRestart = load.answered;
      await load.until(() => load.answered >= answeredAtRestart + 150, '150 answers from the restarted authz');
    } finally {
      await load.stop();
    }
    // A graceful stop writes the final checkpoint, so all of the log is signed when verified.
    await mesh.authz.stop();

    const unexpected = load.outcomes.filter((o) => o.kind === 'unexpected');
    assert.deepEqual(unexpected, [], 'every answer is an allow, a Tollgate denial, or Envoy refusing on its own');

    const refused = load.outcomes.filter((o): o is Extract<Outcome, { kind: 'refused' }> => o.kind === 'refused');
    assert.ok(refused.length > 0, 'Envoy refused calls while authz was down');
    for (const r of refused) {
      assert.ok(r.status >= 500, `Envoy refusal ${r.rpcId}: status ${r.status}`);
      assert.ok(!carriesDecisionId(r), `Envoy refusal ${r.rpcId} names a decision: ${r.decisionHeader ?? r.body}`);
    }

    const log = indexLog(t.logDir);
    // Decisions and accounting records share the chain: together they number 1..N.
    const chain = logEntries(t.logDir).map((e) => e.record.seq);
    assert.deepEqual(chain, chain.map((_, i) => i + 1), 'seq runs 1..N without gaps');
    for (const [id, rs] of log.byDecision) assert.equal(rs.length, 1, `decision ${id} is recorded once (no batches here)`);

    const allowed = load.outcomes.filter((o) => o.kind === 'allowed');
    const denied = load.outcomes.filter((o): o is Extract<Outcome, { kind: 'denied' }> => o.kind === 'denied');
    for (const a of allowed) {
      const rs = log.byRpcId.get(a.rpcId) ?? [];
      assert.equal(rs.length, 1, `allowed call ${a.rpcId} has exactly one record (found ${rs.length})`);
      assert.equal(rs[0]!.result.allow, true);
      assert.equal(rs[0]!.mcp.tool, 'search_docs');
    }
    let beforePolicy = 0;
    let badBodies = 0;
    for (const d of denied) {
      const r = log.byDecision.get(d.decisionId)?.[0];
      assert.ok(r, `denied call ${d.rpcId} (decision ${d.decisionId}) is in the log`);
      assert.equal(r.result.allow, false);
      if (d.code === -32001) {
        beforePolicy++;
        assert.equal(r.identity.sub, null, 'a token that failed verification identifies nobody');
        assert.match(r.result.error ?? '', /expired/);
      } else if (d.code === -32700) {
        beforePolicy++;
        badBodies++;
        assert.equal(d.status, 400);
        assert.equal(r.result.http_status, 400);
        assert.ok(r.result.error, 'the parse error is recorded');
      } else {
        assert.equal(r.mcp.id, d.rpcId);
        assert.equal(r.mcp.tool, 'delete_records');
        assert.match(r.result.reasons.join(' '), /destructive/);
      }
    }
    assert.ok(beforePolicy > badBodies && badBodies > 0, 'refusals before policy (bad token, bad body) were answered and checked');

    // The MCP server saw the decision id of everything authz let through, including calls whose
    // answer was cut off on the way back when authz died: each must be a recorded allow.
    const reached = mesh.demo!.requests.map((r) => r.decisionId);
    assert.ok(reached.every((id): id is string => typeof id === 'string'), 'every request that reached the server was decided by authz');
    for (const id of reached) {
      const r = log.byDecision.get(id as string)?.[0];
      assert.ok(r, `decision ${id} reached the MCP server but is not in the log`);
      assert.equal(r.result.allow, true);
    }

    // The log spans the crash: answers from before the kill precede answers after the restart.
    const seqOf = (o: Outcome): number => (o.kind === 'denied' ? log.byDecision.get(o.decisionId)![0]!.seq : log.byRpcId.get(o.rpcId)![0]!.seq);
    const answeredBefore = load.outcomes.slice(0, killAt).filter((o) => o.kind === 'allowed' || o.kind === 'denied').map(seqOf);
    const answeredAfter = load.outcomes.slice(restartAt).filter((o) => o.kind === 'allowed' || o.kind === 'denied').map(seqOf);
    assert.ok(answeredBefore.length > 0 && answeredAfter.length > 0);
    assert.ok(Math.max(...answeredBefore) < Math.min(...answeredAfter), 'the restarted authz continued the same chain');

    // `tollgate logs verify DIR --key <copy kept elsewhere>`: intact across the crash and signed to
    // the end; the only warning a crash may leave is the torn line the restart noted.
    const v = await tollgateLogs(['verify', t.logDir, '--key', trustedKey, '--json']);
    const report = JSON.parse(v.out) as VerifyReport & { ok: boolean };
    assert.equal(v.code, 0, v.out);
    assert.equal(report.ok, true);
    assert.deepEqual(report.findings.filter((f) => f.kind !== 'crash_recovered'), [], 'no finding but crash_recovered');
    assert.equal(report.records, chain.length);
    assert.equal(report.signedThrough, chain.length, 'the final checkpoint signs the whole chain');
    const plain = await tollgateLogs(['verify', t.logDir]);
    assert.equal(plain.code, 0, plain.out);
    assert.match(plain.out, /INTACT/);

    const s = load.summary();
    const answeredRecords = new Set([...allowed.map((a) => log.byRpcId.get(a.rpcId)![0]!.seq), ...denied.map((d) => log.byDecision.get(d.decisionId)![0]!.seq)]);
    console.log(`      requests ${load.outcomes.length}: answered by authz ${s.allowed + s.denied} (allowed ${s.allowed}, denied ${s.denied}, of which ${beforePolicy} before policy, ${badBodies} for a body that is not JSON), ` +
      `refused by Envoy ${s.refused}, broken off ${s.failed}; MCP server reached by ${reached.length} decisions; ` +
      `log ${log.records.length} records (${answeredRecords.size} matched to client answers), ${report.checkpoints} checkpoints, ` +
      `warnings: ${report.findings.map((f) => f.kind).join(', ') || 'none'}`);
  });
});
