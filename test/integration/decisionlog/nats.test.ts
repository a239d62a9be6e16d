import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogsCommand } from '../../../src/cli/logs.js';
import { createDecisionSink } from '../../../src/decisionlog/config.js';
import { readRecords } from '../../../src/decisionlog/reader.js';
import { readStreamRecords, type StreamRecord } from '../../../src/decisionlog/nats-reader.js';
import { NatsReplica } from '../../../src/decisionlog/nats-sink.js';
import type { TeeSink } from '../../../src/decisionlog/tee.js';
import { NatsServer } from '../../../src/nats/server.js';
import { freePort } from '../../../src/util/net.js';
import { sampleDraft } from '../../unit/decisionlog/fixtures.js';
import { cleanupTempDirs, tempDir } from '../../unit/decisionlog/helpers.js';

const STREAM = 'TOLLGATE_DECISIONS';
const PREFIX = 'tollgate.decisions';
const child = fileURLToPath(new URL('./fixtures/append-nats.ts', import.meta.url));

async function streamRecords(url: string): Promise<StreamRecord[]> {
  const out: StreamRecord[] = [];
  for await (const r of readStreamRecords({ url, stream: STREAM, subjectPrefix: PREFIX })) out.push(r);
  return out;
}

function replicaOf(sink: TeeSink): NatsReplica {
  const r = sink.replicas[0];
  // By name: createDecisionSink imports the replica on demand, and under tsx a dynamic import is
  // a second instance of the module, so instanceof would compare two different classes.
  assert.equal(r?.constructor.name, NatsReplica.name);
  return r as NatsReplica;
}

async function drained(r: NatsReplica, ms = 15000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    r.drained(),
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`replica not drained: ${JSON.stringify(r.stats())}`)), ms); }),
  ]);
  clearTimeout(timer);
}

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 2));

/** Every record of the local log is in the stream exactly once, in seq order, byte for byte. */
function assertExactCopy(dir: string, got: StreamRecord[]): void {
  const local = [...readRecords(dir)];
  assert.deepEqual(got.map((r) => r.record.seq), local.map((r) => r.record.seq), 'stream seqs = local seqs, in order, no duplicates');
  got.forEach((r, i) => {
    assert.equal(r.line, local[i]!.line);
    assert.equal(r.msgId, `${r.record.decision_id}:${r.record.seq}`);
    assert.equal(r.subject, `${PREFIX}.${r.record.mcp.namespace}.${r.record.mcp.server}`);
  });
}

describe('decision log replication to NATS JetStream', function () {
  this.timeout(60000);
  let nats: NatsServer;
  const warnings: string[] = [];
  const warn = (m: string): void => { warnings.push(m); };

  beforeEach(async () => {
    warnings.length = 0;
    nats = await NatsServer.start();
  });
  afterEach(async () => { await nats.dispose(); });
  after(cleanupTempDirs);

  it('survives nats-server being stopped and restarted mid-stream: every record once, in order', async () => {
    const base = tempDir();
    const dir = join(base, 'decisions');
    const sink = await createDecisionSink({
      dir, checkpointEvery: 50, nats: { url: nats.url, queueDir: join(base, 'spool'), publishTimeoutMs: 1000 },
    }, { warn });
    const replica = replicaOf(sink);
    let i = 0;
    const burst = async (n: number): Promise<void> => {
      for (let k = 0; k < n; k++) {
        sink.append(sampleDraft({ i: ++i, server: i % 2 ? 'billing' : 'search', namespace: 'prod' }));
        if (k % 10 === 0) await tick();
      }
    };
    await burst(150);
    await nats.stop();
    await burst(150); // while NATS is down: append() keeps returning, records go to the spool
    assert.ok(replica.stats().spooledBytes > 0 || replica.stats().queued > 0, 'records are waiting while NATS is down');
    await nats.restart();
    await burst(150);
    await drained(replica);
    const stats = replica.stats();
    await sink.close();

    assertExactCopy(dir, await streamRecords(nats.url));
    assert.equal(stats.ackedSeq, 450);
    assert.equal(stats.dropped, 0);
    assert.ok(warnings.some((w) => /cannot publish/.test(w)), 'the outage is logged');
  });

  it('when the spool is full, later records are read back from the local log: nothing lost', async () => {
    const base = tempDir();
    const dir = join(base, 'decisions');
    const sink = await createDecisionSink({
      dir, nats: { url: nats.url, queueDir: join(base, 'spool'), queueMaxBytes: 16 * 1024, publishTimeoutMs: 1000 },
    }, { warn });
    const replica = replicaOf(sink);
    for (let i = 1; i <= 20; i++) sink.append(sampleDraft({ i }));
    await drained(replica);
    await nats.stop();
    for (let i = 21; i <= 120; i++) {
      sink.append(sampleDraft({ i }));
      if (i % 10 === 0) await tick();
    }
    const during = replica.stats();
    assert.ok(during.deferred > 0, `the spool (16 KiB) cannot hold 100 records: ${JSON.stringify(during)}`);
    assert.ok(warnings.some((w) => /spool .* is full/.test(w)), 'a full spool is logged, never silent');
    await nats.restart();
    for (let i = 121; i <= 130; i++) sink.append(sampleDraft({ i }));
    await drained(replica);
    assert.equal(replica.stats().catchingUpFrom, null);
    await sink.close();
    assertExactCopy(dir, await streamRecords(nats.url));
  });

  it('a kill -9 of the writer loses nothing and duplicates nothing in the stream', async () => {
    const base = tempDir();
    const dir = join(base, 'decisions');
    const spool = join(base, 'spool');
    const keyPath = join(base, 'key.pem');
    const acked = await new Promise<number[]>((resolve, reject) => {
      const p = spawn(process.execPath, ['--import', 'tsx', child, dir, spool, keyPath, nats.url], { stdio: ['ignore', 'pipe', 'pipe'] });
      const seqs: number[] = [];
      let buf = '';
      let err = '';
      p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
      p.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        const lines = buf.split('\n');
        buf = lines.pop()!;
        for (const l of lines) if (l) seqs.push(Number(l));
        if (seqs.length >= 1500 && !p.killed) p.kill('SIGKILL');
      });
      p.on('exit', (code, sig) => (sig === 'SIGKILL' ? resolve(seqs) : reject(new Error(`child exited ${code}: ${err}`))));
    });
    assert.ok(acked.length >= 1500);

    // Restart on the same directories: the replica catches up what the dead process had not sent.
    const sink = await createDecisionSink({ dir, signingKeyPath: keyPath, nats: { url: nats.url, queueDir: spool, publishTimeoutMs: 1000 } }, { warn });
    const replica = replicaOf(sink);
    for (let i = 1; i <= 10; i++) sink.append(sampleDraft({ i: 100000 + i }));
    await drained(replica);
    await sink.close();
    const got = await streamRecords(nats.url);
    assertExactCopy(dir, got);
    const inStream = new Set(got.map((r) => r.record.seq));
    assert.deepEqual(acked.filter((s) => !inStream.has(s)), []);
  });

  it('append() does not wait when NATS was never reachable, and the records follow once it is', async () => {
    const base = tempDir();
    const dir = join(base, 'decisions');
    const port = await freePort();
    const url = `nats://127.0.0.1:${port}`;
    const sink = await createDecisionSink({ dir, nats: { url, queueDir: join(base, 'spool'), publishTimeoutMs: 1000 } }, { warn });
    const replica = replicaOf(sink);
    for (let i = 1; i <= 30; i++) sink.append(sampleDraft({ i }));
    assert.equal(replica.stats().connected, false);
    assert.ok(replica.stats().spooledBytes > 0);
    const late = await NatsServer.start({ port });
    try {
      await drained(replica);
      await sink.close();
      assertExactCopy(dir, await streamRecords(url));
    } finally {
      await late.dispose();
    }
  });

  it('tollgate logs query|stats|tail --nats read the central stream', async () => {
    const base = tempDir();
    const dir = join(base, 'decisions');
    const sink = await createDecisionSink({ dir, nats: { url: nats.url, queueDir: join(base, 'spool') } }, { warn });
    for (let i = 1; i <= 12; i++) {
      sink.append(sampleDraft({ i, server: i % 3 === 0 ? 'search' : 'billing', namespace: 'prod', allow: i % 4 !== 0, tool: i % 4 === 0 ? 'delete_records' : 'get_invoice' }));
    }
    await drained(replicaOf(sink));
    let out = '';
    const ac = new AbortController();
    const cmd = createLogsCommand({ out: (s) => { out += s; }, err: () => undefined, env: {}, signal: ac.signal });
    const run = async (argv: string[]): Promise<string> => {
      out = '';
      assert.equal(await cmd.run(argv), 0);
      return out;
    };
    const json = (text: string): number[] => text.trim().split('\n').map((l) => (JSON.parse(l) as { seq: number }).seq);
    assert.deepEqual(json(await run(['query', '--nats', nats.url, '--server', 'billing', '--json'])), [1, 2, 4, 5, 7, 8, 10, 11]);
    assert.deepEqual(json(await run(['query', '--nats', nats.url, '--decision', 'deny', '--tool', 'delete_*', '--json'])), [4, 8, 12]);
    assert.match(await run(['stats', '--nats', nats.url]), /12 decisions .*: 9 allowed, 3 denied[\s\S]*2\s+billing\s+delete_records\n1\s+search\s+delete_records/);
    assert.deepEqual(json(await run(['tail', '-n', '2', '--json', '--nats', nats.url])), [11, 12]);

    // tail -f on the stream: a record written now shows up, then Ctrl-C (abort) ends it.
    out = '';
    const following = cmd.run(['tail', '-f', '-n', '1', '--json', '--nats', nats.url]);
    for (let k = 0; k < 300 && !out.includes('"seq":12'); k++) await new Promise((r) => setTimeout(r, 20));
    sink.append(sampleDraft({ i: 13, server: 'billing', namespace: 'prod' }));
    for (let k = 0; k < 300 && !out.includes('"seq":13'); k++) await new Promise((r) => setTimeout(r, 20));
    ac.abort();
    assert.equal(await following, 0);
    assert.deepEqual(json(out), [12, 13]);
    await sink.close();
  });
});
