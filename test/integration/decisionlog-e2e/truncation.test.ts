import { strict as assert } from 'node:assert';
import { existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { listLogFiles } from '../../../src/decisionlog/files.js';
import { parseLine } from '../../../src/decisionlog/lines.js';
import { indexLog, keepPublicKey, RawSession, startMesh, tollgateLogs, type TestMesh } from './support.js';

/**
 * Issue 10 item 5 through the real mesh (Envoy → authz process → demo server). Reported: cut the
 * newest records back to the last checkpoint, restart, and the writer resumed while `logs verify
 * --key <trusted>` printed INTACT; a delete_records call vanished without a trace. Now the
 * checkpoints are also in the witness beside the log directory, the restarted authz refuses to
 * start over the gap, and verify reports TRUNCATED at file:line. Deleting the newest file while
 * authz runs is noticed at the next call and on record.
 *
 * Cost: ~15 s.
 */
describe('decision log end to end: truncation and deletion are detected', function () {
  this.timeout(120_000);
  let t: TestMesh;

  before(async () => { t = await startMesh('dlog-trunc'); });
  after(async () => { await t?.dispose(); });

  it('cut back to the last checkpoint: authz refuses to restart, verify says TRUNCATED; restored, it resumes', async () => {
    const { mesh } = t;
    const key = keepPublicKey(t);
    const witness = join(t.state, 'decisions.witness.jsonl');
    const alice = () => mesh.token({ sub: 'alice', team: 'payments' });
    let s = await RawSession.open(mesh.endpoints.mcp, await alice(), 'reader');
    for (let n = 0; n < 3; n++) assert.equal((await s.call(`read-${n}`, 'search_docs', { query: `q${n}` })).kind, 'allowed');
    // A graceful restart signs the chain (checkpoint in the log and in the witness).
    await mesh.restartAuthz();
    s = await RawSession.open(mesh.endpoints.mcp, await alice(), 'reader-2');
    const dora = await RawSession.open(mesh.endpoints.mcp, await mesh.token({ sub: 'dora', team: 'payments', groups: ['dba'] }), 'dba');
    assert.equal((await dora.call('the-delete', 'delete_records', { table: 'invoices', where: "id = 'x'" })).kind, 'allowed');
    assert.equal((await s.call('read-after', 'search_docs', { query: 'after' })).kind, 'allowed');
    await mesh.authz.stop();
    assert.ok(existsSync(witness), 'authz keeps a witness beside its log directory');

    // The attack: cut the newest file back to the checkpoint the restart wrote.
    const newest = listLogFiles(t.logDir).at(-1)!;
    const original = readFileSync(newest.path, 'utf8');
    const lines = original.split('\n').slice(0, -1);
    const checkpoints = lines.map((l, i) => [parseLine(l).kind, i] as const).filter(([k]) => k === 'checkpoint').map(([, i]) => i);
    assert.ok(checkpoints.length >= 2, `expected the restart's checkpoint and the final one in ${newest.name}`);
    const keep = checkpoints[checkpoints.length - 2]! + 1;
    writeFileSync(newest.path, lines.slice(0, keep).map((l) => l + '\n').join(''));
    assert.equal(indexLog(t.logDir).byRpcId.get('the-delete'), undefined, 'the delete_records record is gone from the files');

    await assert.rejects(mesh.restartAuthz(), (e: Error) => {
      assert.match(e.message, /exited \(code [1-9]\d*\) before it was ready/);
      assert.match(e.message, /were removed from the end of the log/);
      assert.match(e.message, /will not resume a log behind its last anchored checkpoint/);
      return true;
    });

    const v = await tollgateLogs(['verify', t.logDir, '--key', key]);
    assert.equal(v.code, 1, v.out);
    assert.match(v.out, /^TRUNCATED/m);
    assert.match(v.out, new RegExp(`truncated\\s+${newest.name}:${keep - 1}\\b`), v.out);
    assert.match(v.out, /the witness holds a signed checkpoint for seq \d+/);

    // Restoring the cut records (from a backup, say) lets authz resume, and the log verifies.
    writeFileSync(newest.path, original);
    await mesh.restartAuthz();
    s = await RawSession.open(mesh.endpoints.mcp, await alice(), 'reader-3');
    assert.equal((await s.call('read-restored', 'search_docs', { query: 'restored' })).kind, 'allowed');
    await mesh.authz.stop();
    const ok = await tollgateLogs(['verify', t.logDir, '--key', key]);
    assert.equal(ok.code, 0, ok.out);
    assert.match(ok.out, /^INTACT/m);
    await mesh.restartAuthz();
  });

  it('the newest file deleted while authz runs: the next call is recorded in a new file that names the loss, verify reports it', async () => {
    const { mesh } = t;
    const s = await RawSession.open(mesh.endpoints.mcp, await mesh.token({ sub: 'alice', team: 'payments' }), 'deleter');
    assert.equal((await s.call('before-delete', 'search_docs', { query: 'before' })).kind, 'allowed');
    const victim = listLogFiles(t.logDir).at(-1)!;
    unlinkSync(victim.path);
    assert.equal((await s.call('after-delete', 'search_docs', { query: 'after' })).kind, 'allowed');
    const log = indexLog(t.logDir);
    assert.equal(log.byRpcId.get('after-delete')?.length, 1, 'the call after the deletion is recorded');
    const next = listLogFiles(t.logDir).at(-1)!;
    assert.ok(next.index > victim.index);
    const head = parseLine(readFileSync(next.path, 'utf8').split('\n')[0]!);
    assert.ok(head.kind === 'head' && head.head.lost?.file === victim.name && head.head.lost.reason === 'deleted', JSON.stringify(head));
    const v = await tollgateLogs(['verify', t.logDir]);
    assert.equal(v.code, 1, v.out);
    assert.match(v.out, new RegExp(`deleted\\s+${next.name}:1\\b`));
    assert.match(v.out, new RegExp(`${victim.name} was deleted while authz was writing it`));
  });
});
