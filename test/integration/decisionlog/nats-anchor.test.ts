import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { createDecisionSink } from '../../../src/decisionlog/config.js';
import { listLogFiles } from '../../../src/decisionlog/files.js';
import { parseLine } from '../../../src/decisionlog/lines.js';
import { anchorSubject } from '../../../src/decisionlog/nats-sink.js';
import type { WitnessEntry } from '../../../src/decisionlog/witness.js';
import { NatsServer } from '../../../src/nats/server.js';
import { sampleDraft } from '../../unit/decisionlog/fixtures.js';
import { cleanupTempDirs, tempDir } from '../../unit/decisionlog/helpers.js';

/**
 * Issue 10 item 5, the NATS half: with replication configured, every checkpoint is also anchored
 * in the JetStream stream (`<prefix>._anchors.<log id>`), and a writer whose local log was cut
 * behind that anchor refuses every append once NATS answers (fail closed), even with no witness
 * file. Real nats-server. Cost: ~3 s.
 */
describe('decision log checkpoints anchored on NATS', function () {
  this.timeout(60_000);
  let nats: NatsServer;
  before(async () => { nats = await NatsServer.start(); });
  after(async () => { await nats.dispose(); cleanupTempDirs(); });

  async function lastAnchor(logId: string): Promise<WitnessEntry | null> {
    const nc = await connect({ servers: nats.url });
    try {
      const jsm = await jetstreamManager(nc);
      const m = await jsm.streams.getMessage('TOLLGATE_DECISIONS', { last_by_subj: anchorSubject('tollgate.decisions', logId) }).catch(() => null);
      return m ? (JSON.parse(new TextDecoder().decode(m.data)) as WitnessEntry) : null;
    } finally {
      await nc.close();
    }
  }

  const waitFor = async <T>(probe: () => T | null | Promise<T | null>, what: string): Promise<T> => {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const v = await probe();
      if (v !== null) return v;
      if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  it('anchors the last checkpoint; a log cut behind it is refused once NATS answers, an intact one is not', async () => {
    const base = tempDir();
    const dir = join(base, 'decisions');
    const cfg = { dir, checkpointEvery: 5, witnessPath: null, nats: { url: nats.url, queueDir: join(base, 'spool'), publishTimeoutMs: 2000 } };
    const warnings: string[] = [];
    const sink = await createDecisionSink(cfg, { warn: (m) => warnings.push(m) });
    const logId = sink.file.logId;
    await waitFor(() => (sink.replicas[0]!.stats() as { healthy: boolean }).healthy || null, 'NATS healthy');
    for (let i = 1; i <= 12; i++) sink.append(sampleDraft({ i }));
    await sink.close(); // final checkpoint at 12, anchored before the replica stops
    const anchored = await waitFor(() => lastAnchor(logId), 'the anchor');
    assert.equal(anchored.checkpoint.seq, 12);

    // An intact restart is fine.
    const again = await createDecisionSink(cfg, { warn: (m) => warnings.push(m) });
    assert.equal(again.file.logId, logId, 'the log keeps its id across restarts');
    await waitFor(() => (again.replicas[0]!.stats() as { healthy: boolean }).healthy || null, 'NATS healthy');
    again.append(sampleDraft({ i: 13 }));
    await again.close();
    assert.equal((await lastAnchor(logId))?.checkpoint.seq, 13);

    // Cut the file back to the checkpoint at seq 10 (no witness file to catch it locally).
    const file = listLogFiles(dir).at(-1)!.path;
    const lines = readFileSync(file, 'utf8').split('\n').slice(0, -1);
    const keep = lines.findIndex((l) => { const p = parseLine(l); return p.kind === 'checkpoint' && p.checkpoint.seq === 10; }) + 1;
    writeFileSync(file, lines.slice(0, keep).map((l) => l + '\n').join(''));

    const cut = await createDecisionSink(cfg, { warn: (m) => warnings.push(m) });
    try {
      await waitFor(() => warnings.find((w) => /holds the signed checkpoint for seq 13/.test(w)) ?? null, 'the gap warning');
      assert.throws(() => cut.append(sampleDraft({ i: 11 })), /ended at seq 10 when it was opened.*records 11\.\.13 were removed from the local log.*every call is refused/);
    } finally {
      await cut.close();
    }
  });
});
