import { strict as assert } from 'node:assert';
import { generateKeyPairSync } from 'node:crypto';
import { appendFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkpointPayload, signCheckpoint, verifyCheckpoint } from '../../../src/decisionlog/checkpoint.js';
import { DecisionLogConfigError, resolveDecisionLogConfig } from '../../../src/decisionlog/config.js';
import { loadOrCreateSigningKey, publicJwksFromFile, signingKeyFrom } from '../../../src/decisionlog/keys.js';
import { Spool } from '../../../src/decisionlog/spool.js';
import { cleanupTempDirs, tempDir, trusted } from './helpers.js';

describe('checkpoint keys', () => {
  after(cleanupTempDirs);

  it('creates an Ed25519 key with mode 0600 (PEM, or JWK for .json) and reloads the same key', () => {
    const dir = tempDir();
    for (const name of ['k.pem', 'k.json']) {
      const path = join(dir, 'sub', name);
      const a = loadOrCreateSigningKey(path);
      assert.equal(a.alg, 'EdDSA');
      assert.equal(statSync(path).mode & 0o777, 0o600);
      assert.equal(readFileSync(path, 'utf8').startsWith(name.endsWith('.json') ? '{' : '-----BEGIN PRIVATE KEY-----'), true);
      const b = loadOrCreateSigningKey(path);
      assert.equal(b.kid, a.kid);
      assert.deepEqual(b.publicJwk, a.publicJwk);
      assert.equal('d' in a.publicJwk, false, 'the public JWK carries no private part');
    }
  });

  it('warns about a key file readable by others', () => {
    const path = join(tempDir(), 'k.pem');
    writeFileSync(path, generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o644 });
    const warnings: string[] = [];
    loadOrCreateSigningKey(path, (m) => warnings.push(m));
    assert.match(warnings.join(), /readable by other users .* chmod 600/);
  });

  it('signs and verifies with P-256 (ES256) keys too, and reads verifier keys from PEM', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const key = signingKeyFrom(privateKey);
    assert.equal(key.alg, 'ES256');
    const line = signCheckpoint(checkpointPayload({ seq: 3, hash: 'a'.repeat(64) }, new Date()), key);
    const res = await verifyCheckpoint(line, trusted(key));
    assert.equal(res.ok, true);
    const pemPath = join(tempDir(), 'pub.pem');
    writeFileSync(pemPath, publicKey.export({ format: 'pem', type: 'spki' }));
    const [jwk] = publicJwksFromFile(pemPath);
    assert.equal(jwk!.kid, key.kid);
    assert.equal(jwk!.alg, 'ES256');
  });

  it('rejects a file that is not a key, saying what it expected', () => {
    const path = join(tempDir(), 'k.pem');
    writeFileSync(path, 'hello', { mode: 0o600 });
    assert.throws(() => loadOrCreateSigningKey(path), /not a private key in PKCS#8 PEM or JWK form/);
  });
});

describe('spool (disk queue)', () => {
  after(cleanupTempDirs);

  it('queues in order, survives reopen, and empties once everything is committed', () => {
    const dir = tempDir();
    let s = Spool.open(dir, 1 << 20);
    for (let i = 0; i < 5; i++) assert.equal(s.push(`line-${i}`), true);
    const first = s.peek(2);
    assert.deepEqual(first.map((x) => x.line), ['line-0', 'line-1']);
    s.commit(first[1]!.end);
    s.close();
    s = Spool.open(dir, 1 << 20);
    const rest = s.peek(10);
    assert.deepEqual(rest.map((x) => x.line), ['line-2', 'line-3', 'line-4']);
    s.commit(rest[2]!.end);
    assert.equal(s.empty, true);
    assert.equal(statSync(join(dir, 'spool.jsonl')).size, 0);
    s.close();
  });

  it('refuses what does not fit, after compacting delivered lines away', () => {
    const dir = tempDir();
    const s = Spool.open(dir, 100);
    const line = 'x'.repeat(29); // 30 bytes with the newline
    assert.deepEqual([s.push(line), s.push(line), s.push(line), s.push(line)], [true, true, true, false]);
    s.commit(s.peek(1)[0]!.end);
    assert.equal(s.push(line), true, 'room made by compaction');
    assert.equal(s.pendingBytes, 90);
    assert.equal(s.peek(10).length, 3);
    s.close();
  });

  it('puts recovered lines in front, and drops a torn last line on open', () => {
    const dir = tempDir();
    let s = Spool.open(dir, 1 << 20);
    s.push('b');
    s.prepend(['a0', 'a1']);
    s.close();
    appendFileSync(join(dir, 'spool.jsonl'), '{"torn');
    const warnings: string[] = [];
    s = Spool.open(dir, 1 << 20, (m) => warnings.push(m));
    assert.deepEqual(s.peek(10).map((x) => x.line), ['a0', 'a1', 'b']);
    assert.match(warnings.join(), /incomplete line/);
    s.close();
  });
});

describe('decision log config', () => {
  it('fills documented defaults', () => {
    const c = resolveDecisionLogConfig({}, { TOLLGATE_STATE_DIR: '/var/lib/tollgate' });
    assert.deepEqual(c, {
      dir: '/var/lib/tollgate/decisions', maxFileBytes: 64 * 1024 * 1024, checkpointEvery: 1000, checkpointIntervalMs: 10000,
      signingKeyPath: '/var/lib/tollgate/decision-log-key.pem', fsync: 'checkpoint', nats: null,
      witnessPath: '/var/lib/tollgate/decisions.witness.jsonl',
    });
    assert.equal(resolveDecisionLogConfig({ dir: '/x/decisions', witnessPath: null }, {}).witnessPath, null);
    assert.throws(() => resolveDecisionLogConfig({ dir: '/x/decisions', witnessPath: '/x/decisions/w.jsonl' }, {}), /inside the log directory/);
    assert.equal(resolveDecisionLogConfig({}, {}).dir, '.state/decisions');
    const n = resolveDecisionLogConfig({ dir: '/x/decisions', nats: { url: 'nats://h:4222' } }, {}).nats;
    assert.deepEqual(n, {
      url: 'nats://h:4222', stream: 'TOLLGATE_DECISIONS', subjectPrefix: 'tollgate.decisions', queueDir: '/x/decisions-spool',
      queueMaxBytes: 256 * 1024 * 1024, memoryMaxRecords: 10000, publishTimeoutMs: 5000, duplicateWindowMs: 600000, maxAgeMs: 0,
    });
  });

  it('names the field and the fix for bad values', () => {
    assert.throws(() => resolveDecisionLogConfig({ maxFileBytes: 10 }), DecisionLogConfigError);
    assert.throws(() => resolveDecisionLogConfig({ checkpointEvery: 0 }), /checkpointEvery: must be an integer ≥ 1/);
    assert.throws(() => resolveDecisionLogConfig({ nats: { url: 'nats://x', stream: 'a.b' } }), /nats.stream: "a.b" is not a valid stream name/);
    assert.throws(() => resolveDecisionLogConfig({ nats: { url: 'nats://x', subjectPrefix: 'a.>' } }), /nats.subjectPrefix/);
    assert.throws(() => resolveDecisionLogConfig({ nats: { url: '' } }), /nats.url: is required/);
    assert.throws(() => resolveDecisionLogConfig({ nats: { url: 'nats://x', queueMaxBytes: '1' as unknown as number } }), /^DecisionLogConfigError: decision log config: nats\.queueMaxBytes: must be an integer ≥ 4096, got "1"$/);
    assert.throws(() => resolveDecisionLogConfig({ fsync: 'sometimes' as 'never' }), /fsync: must be always, checkpoint or never, got sometimes/);
  });
});
