import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import { ensurePinBuckets } from '../../../src/controlplane/pins.js';
import { PINS_BUCKET, SEEN_BUCKET, toolKey } from '../../../src/pins/buckets.js';
import { definitionHash, toolDefinition } from '../../../src/pins/definition.js';
import { NatsServer } from '../../../src/nats/server.js';
import { selfCommand } from '../../../src/util/self.js';

interface Run { code: number; stdout: string; stderr: string }

function tollgate(args: string[]): Promise<Run> {
  const self = selfCommand();
  return new Promise((done) => {
    execFile(self.cmd, [...self.args, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

/** tollgate tools pending|diff|approve|revoke against a real nats-server holding malformed entries. */
describe('tools pending|diff|approve|revoke with malformed KV entries', function () {
  this.timeout(120_000);
  let srv: NatsServer;
  let nc: NatsConnection;
  let pins: KV;
  let seen: KV;
  let dir: string;
  let key: string;
  const def = toolDefinition({ name: 'good', description: 'Fine.' })!;
  const tools = (sub: string, ...flags: string[]) => tollgate(['tools', sub, '--nats', srv.url, ...flags]);
  const signing = () => ['--key', key, '--approver', 'alice'];

  before(async () => {
    srv = await NatsServer.start();
    nc = await connect({ servers: srv.url });
    await ensurePinBuckets(nc);
    pins = await new Kvm(nc).open(PINS_BUCKET);
    seen = await new Kvm(nc).open(SEEN_BUCKET);
    dir = mkdtempSync(join(tmpdir(), 'tollgate-pins-cli-'));
    key = join(dir, 'approver.pem');
    writeFileSync(key, generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }));
    await seen.put(toolKey('s', 'good'), JSON.stringify({ server: 's', tool: 'good', sha256: definitionHash(def), definition: def, findings: [], seen_at: '2026-01-01T00:00:00.000Z' }));
    await seen.put(toolKey('s', 't'), JSON.stringify({ server: 's', tool: 't' }));
    await seen.put(toolKey('s', 'nj'), 'not json');
    await pins.put(toolKey('s', 'p'), JSON.stringify({ jws: 5 }));
    const def2 = toolDefinition({ name: 'good2', description: 'Fine too.' })!;
    await seen.put(toolKey('s', 'good2'), JSON.stringify({ server: 's', tool: 'good2', sha256: definitionHash(def2), definition: def2, findings: [], seen_at: '2026-01-01T00:00:00.000Z' }));
    await pins.put(toolKey('s', 'good2'), JSON.stringify({ jws: 'a.b.c', definition: 7 }));
  });
  after(async () => {
    await nc?.close();
    await srv?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('diff and approve name the malformed seen entry; revoke the malformed pin', async () => {
    const d = await tools('diff', '--server', 's', '--tool', 't');
    assert.equal(d.code, 1, d.stdout + d.stderr);
    assert.equal(d.stdout, '');
    assert.match(d.stderr, new RegExp(`tollgate_tools_seen entry ${toolKey('s', 't')} \\(server "s", tool "t"\\) is malformed: sha256: `));
    assert.doesNotMatch(d.stderr, /undefined|Cannot read properties/);

    const n = await tools('diff', '--server', 's', '--tool', 'nj');
    assert.equal(n.code, 1);
    assert.match(n.stderr, /tollgate_tools_seen entry \S+ \(server "s", tool "nj"\) is malformed: not JSON/);

    const a = await tools('approve', '--server', 's', '--tool', 't', ...signing());
    assert.equal(a.code, 1);
    assert.match(a.stderr, /tollgate_tools_seen entry \S+ \(server "s", tool "t"\) is malformed/);
    assert.doesNotMatch(a.stderr, /has no JSON form/);

    const r = await tools('revoke', '--server', 's', '--tool', 'p', ...signing());
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`tollgate_pins entry ${toolKey('s', 'p')} \\(server "s", tool "p"\\) is malformed: jws: `));
    assert.doesNotMatch(r.stderr, /is not a function/);
    assert.equal((await pins.get(toolKey('s', 'p')))?.string(), '{"jws":5}');

    // A malformed pin is not shown as "new (never approved)".
    const g = await tools('diff', '--server', 's', '--tool', 'good2');
    assert.equal(g.code, 1);
    assert.equal(g.stdout, '');
    assert.match(g.stderr, /tollgate_pins entry \S+ \(server "s", tool "good2"\) is malformed: definition: .*tools approve replaces it/);
  });

  it('pending lists the readable tools and reports each malformed entry, exit 1', async () => {
    const p = await tools('pending');
    assert.equal(p.code, 1, p.stdout + p.stderr);
    assert.match(p.stdout, /^s\/good {2}NEW {2}sha256 [0-9a-f]{64}/m);
    const lines = p.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 4, p.stderr);
    for (const [bucket, tool] of [['tollgate_tools_seen', 't'], ['tollgate_tools_seen', 'nj'], ['tollgate_pins', 'p'], ['tollgate_pins', 'good2']]) {
      assert.ok(lines.some((l) => l.startsWith(`tollgate tools pending: ${bucket} entry ${toolKey('s', tool!)} (server "s", tool "${tool}") is malformed: `)), `${bucket} ${tool}: ${p.stderr}`);
    }
    const j = await tools('pending', '--json');
    assert.equal(j.code, 1);
    assert.deepEqual((JSON.parse(j.stdout) as Array<{ tool: string }>).map((t) => t.tool), ['good', 'good2']);
  });

  it('approve still works for a well-formed entry', async () => {
    const a = await tools('approve', '--server', 's', '--tool', 'good', ...signing());
    assert.equal(a.code, 0, a.stderr);
    const d = await tools('diff', '--server', 's', '--tool', 'good');
    assert.equal(d.code, 0, d.stderr);
    assert.match(d.stdout, /s\/good: matches its pin/);
  });
});
