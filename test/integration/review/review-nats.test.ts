import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { createReviewCommand } from '../../../src/cli/review.js';
import { createDecisionSink } from '../../../src/decisionlog/config.js';
import { NatsReplica } from '../../../src/decisionlog/nats-sink.js';
import type { ReviewServer } from '../../../src/review/server.js';
import { NatsServer } from '../../../src/nats/server.js';
import { cleanupTempDirs, tempDir } from '../../unit/decisionlog/helpers.js';
import { writeReviewLog } from '../../unit/review/fixture.js';

/** Issue 16: `tollgate review --nats` reads the central JetStream replica (every instance's records). */
describe('tollgate review --nats (issue 16)', function () {
  this.timeout(60_000);
  let nats: NatsServer;
  before(async () => { nats = await NatsServer.start(); });
  after(async () => {
    await nats?.dispose();
    cleanupTempDirs();
  });

  it('indexes the replica: timeline, filters, a record with its accounting record; no chain status', async () => {
    const base = tempDir('tg-review-nats-');
    const sink = await createDecisionSink({ dir: join(base, 'decisions'), nats: { url: nats.url, queueDir: join(base, 'spool') } }, { warn: () => undefined });
    writeReviewLog(sink, 30);
    const replica = sink.replicas[0] as NatsReplica;
    assert.equal(replica?.constructor.name, NatsReplica.name); // by name: the sink imports it on demand
    await replica.drained();
    await sink.close();

    const ac = new AbortController();
    let server: ReviewServer | null = null;
    let out = '';
    const done = createReviewCommand({ out: (s) => { out += s; }, err: () => undefined, env: {}, signal: ac.signal, listening: (s) => { server = s; } })
      .run(['--nats', nats.url, '--port', '0']);
    for (let i = 0; i < 500 && !server; i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(server, `review did not start: ${out}`);
    const s = server as ReviewServer;
    await s.indexed();
    const get = async (path: string): Promise<Record<string, unknown>> => {
      const r = await fetch(s.url.replace(/\/$/, '') + path);
      assert.equal(r.status, 200, path);
      return await r.json() as Record<string, unknown>;
    };
    const page = await get('/api/timeline?team=growth&decision=deny') as { rows: Array<{ row: number; team: string }> };
    assert.deepEqual(page.rows.map((r) => r.row + 1), [28, 22, 16, 10, 4]);
    const d = await get('/api/record?row=10') as { place: { file: string }; record: { decision_id: string }; accounting: { record: { decision_id: string; tokens: { response: number } } } };
    assert.equal(d.place.file, 'nats:TOLLGATE_DECISIONS');
    assert.equal(d.accounting.record.decision_id, d.record.decision_id);
    assert.equal(d.accounting.record.tokens.response, 211);
    const v = await get('/api/verify') as { state: string; summary: string };
    assert.equal(v.state, 'unavailable');
    assert.match(v.summary, /verify each instance's log/);
    ac.abort();
    assert.equal(await done, 0);
  });
});
