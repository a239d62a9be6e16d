import { strict as assert } from 'node:assert';
import { appendFileSync, readFileSync, rmSync, truncateSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { compactVerify, importJWK } from 'jose';
import { canonicalize } from '../../../src/decisionlog/canonical.js';
import { GENESIS_HASH, sha256Hex } from '../../../src/decisionlog/chain.js';
import { checkpointPayload, signCheckpoint } from '../../../src/decisionlog/checkpoint.js';
import { DecisionLogLockedError } from '../../../src/decisionlog/file-sink.js';
import { listLogFiles } from '../../../src/decisionlog/files.js';
import { parseLine } from '../../../src/decisionlog/lines.js';
import type { ChainedDecisionRecord, CheckpointLine, HeadLine } from '../../../src/decisionlog/types.js';
import { sampleDraft } from './fixtures.js';
import { cleanupTempDirs, errors, fileLines, fill, openSink, otherKey, tempDir, testKey, verifyDir, writeLines } from './helpers.js';

const rec = (line: string): ChainedDecisionRecord => {
  const p = parseLine(line);
  assert.equal(p.kind, 'record', line.slice(0, 80));
  return (p as { record: ChainedDecisionRecord }).record;
};

/** A rotated log: 3+ files, checkpoints every 5 records. */
async function rotatedLog(records = 40): Promise<string> {
  const dir = tempDir();
  const sink = openSink(dir, { maxFileBytes: 40_000 });
  fill(sink, records);
  await sink.close();
  assert.ok(listLogFiles(dir).length >= 3, 'expected the log to rotate');
  return dir;
}

describe('decision log chain, checkpoints and verify', () => {
  after(cleanupTempDirs);

  it('chains records: seq from 1, genesis prev_hash, each prev_hash = SHA-256 of the previous canonical line', async () => {
    const dir = tempDir();
    const sink = openSink(dir);
    fill(sink, 7);
    await sink.close();
    const lines = fileLines(join(dir, 'decisions-000001.jsonl'));
    const head = parseLine(lines[0]!);
    assert.equal(head.kind, 'head');
    assert.equal((head as { head: HeadLine }).head.reason, 'genesis');
    const records = lines.filter((l) => parseLine(l).kind === 'record');
    assert.equal(records.length, 7);
    let prevHash = GENESIS_HASH;
    records.forEach((line, i) => {
      const r = rec(line);
      assert.equal(r.seq, i + 1);
      assert.equal(r.prev_hash, prevHash);
      assert.equal(canonicalize(JSON.parse(line)), line, 'lines are written in canonical form');
      prevHash = sha256Hex(line);
    });
  });

  it('signs a checkpoint every N records, and on close, as a compact JWS that jose verifies', async () => {
    const dir = tempDir();
    const sink = openSink(dir, { checkpointEvery: 5 });
    fill(sink, 7);
    await sink.close();
    const lines = fileLines(join(dir, 'decisions-000001.jsonl'));
    const cks = lines.map(parseLine).filter((p) => p.kind === 'checkpoint').map((p) => (p as { checkpoint: CheckpointLine }).checkpoint);
    assert.deepEqual(cks.map((c) => c.seq), [5, 7]);
    assert.equal(parseLine(lines[6]!).kind, 'checkpoint', 'the checkpoint follows record 5');
    const key = await importJWK(testKey.publicJwk, 'EdDSA');
    const { payload, protectedHeader } = await compactVerify(cks[0]!.jws, key);
    assert.equal(protectedHeader.alg, 'EdDSA');
    assert.equal(protectedHeader.kid, testKey.kid);
    const signed = JSON.parse(new TextDecoder().decode(payload)) as CheckpointLine;
    assert.equal(signed.seq, 5);
    assert.equal(signed.count, 5);
    assert.equal(signed.hash, sha256Hex(lines[5]!));
  });

  it('writes interval checkpoints when records are waiting', async () => {
    const dir = tempDir();
    const sink = openSink(dir, { checkpointEvery: 1000, checkpointIntervalMs: 20 });
    fill(sink, 3);
    const file = join(dir, 'decisions-000001.jsonl');
    for (let i = 0; i < 500 && !fileLines(file).some((l) => parseLine(l).kind === 'checkpoint'); i++) await new Promise((r) => setTimeout(r, 10));
    const cks = fileLines(file).map(parseLine).filter((p) => p.kind === 'checkpoint');
    assert.equal(cks.length, 1);
    assert.equal((cks[0] as { checkpoint: CheckpointLine }).checkpoint.seq, 3);
    await sink.close();
    assert.equal(fileLines(file).map(parseLine).filter((p) => p.kind === 'checkpoint').length, 1, 'nothing new to sign at close');
  });

  it('rotates by size and keeps one chain across files; an intact log verifies', async () => {
    const dir = await rotatedLog();
    const files = listLogFiles(dir);
    const second = fileLines(files[1]!.path);
    const head = (parseLine(second[0]!) as { head: HeadLine }).head;
    assert.equal(head.reason, 'rotate');
    assert.equal(head.prev_file, files[0]!.name);
    const lastOfFirst = fileLines(files[0]!.path).filter((l) => parseLine(l).kind === 'record').pop()!;
    const firstOfSecond = rec(second[1]!);
    assert.equal(firstOfSecond.seq, rec(lastOfFirst).seq + 1);
    assert.equal(firstOfSecond.prev_hash, sha256Hex(lastOfFirst));
    assert.equal(head.prev_hash, sha256Hex(lastOfFirst));
    assert.equal(parseLine(fileLines(files[0]!.path).pop()!).kind, 'checkpoint', 'a rotated file ends signed');

    const report = await verifyDir(dir);
    assert.equal(report.ok, true, JSON.stringify(report.findings));
    assert.equal(report.records, 40);
    assert.equal(report.lastSeq, 40);
    assert.equal(report.signedThrough, 40);
    assert.deepEqual(errors(report), []);
  });

  it('detects an edited record and names its seq and file:line', async () => {
    const dir = await rotatedLog();
    const f = listLogFiles(dir)[1]!;
    const lines = fileLines(f.path);
    const r = rec(lines[2]!);
    const edited = { ...r, result: { ...r.result, allow: !r.result.allow } };
    lines[2] = canonicalize(edited);
    writeLines(f.path, lines);
    const report = await verifyDir(dir);
    assert.equal(report.ok, false);
    const e = errors(report);
    assert.equal(e.length, 1, JSON.stringify(e));
    assert.equal(e[0]!.kind, 'edited');
    assert.equal(e[0]!.seq, r.seq);
    assert.equal(`${e[0]!.file}:${e[0]!.line}`, `${f.name}:3`);
    assert.match(e[0]!.message, new RegExp(`record seq ${r.seq} at ${f.name}:3 was altered`));
  });

  it('detects a deleted record as a seq gap', async () => {
    const dir = await rotatedLog();
    const f = listLogFiles(dir)[1]!;
    const lines = fileLines(f.path);
    const gone = rec(lines[3]!).seq;
    lines.splice(3, 1);
    writeLines(f.path, lines);
    const e = errors(await verifyDir(dir));
    assert.deepEqual(e.map((x) => x.kind), ['deleted']);
    assert.equal(e[0]!.seq, gone);
    assert.match(e[0]!.message, new RegExp(`^seq ${gone} missing: deleted between ${f.name}:3 and ${f.name}:4`));
  });

  it('detects reordering', async () => {
    const dir = await rotatedLog();
    const f = listLogFiles(dir)[0]!;
    const lines = fileLines(f.path);
    const [a, b] = [lines[2]!, lines[3]!];
    lines[2] = b;
    lines[3] = a;
    writeLines(f.path, lines);
    const e = errors(await verifyDir(dir));
    assert.deepEqual(e.map((x) => x.kind), ['reordered']);
    assert.equal(e[0]!.seq, rec(a).seq);
    assert.equal(e[0]!.line, 4);
  });

  it('detects a duplicated (replayed) record', async () => {
    const dir = await rotatedLog();
    const f = listLogFiles(dir)[0]!;
    const lines = fileLines(f.path);
    lines.splice(4, 0, lines[2]!);
    writeLines(f.path, lines);
    const e = errors(await verifyDir(dir));
    assert.deepEqual(e.map((x) => x.kind), ['duplicate']);
    assert.equal(e[0]!.line, 5);
  });

  it('detects a deleted file in the middle of a rotated log', async () => {
    const dir = await rotatedLog();
    const files = listLogFiles(dir);
    rmSync(files[1]!.path);
    const e = errors(await verifyDir(dir));
    assert.ok(e.some((x) => x.kind === 'deleted'), JSON.stringify(e));
  });

  it('detects a truncated tail: a torn last line', async () => {
    const dir = await rotatedLog();
    const last = listLogFiles(dir).pop()!;
    const size = statSync(last.path).size;
    truncateSync(last.path, size - 40);
    const report = await verifyDir(dir);
    const e = errors(report);
    assert.ok(e.some((x) => x.kind === 'truncated' && x.file === last.name), JSON.stringify(e));
    assert.match(e.find((x) => x.kind === 'truncated')!.message, /incomplete/);
  });

  it('detects a truncated tail: records cut after a checkpoint that covers them', async () => {
    const dir = await rotatedLog();
    const last = listLogFiles(dir).pop()!;
    const lines = fileLines(last.path);
    // Drop the last three records but keep the final checkpoint line.
    const ck = lines.pop()!;
    assert.equal(parseLine(ck).kind, 'checkpoint');
    lines.splice(lines.length - 3, 3);
    writeLines(last.path, [...lines, ck]);
    const e = errors(await verifyDir(dir));
    assert.deepEqual(e.map((x) => x.kind), ['truncated']);
    assert.match(e[0]!.message, /covers up to seq 40, but the log ends at seq 37: seq 38\.\.40 are missing/);
  });

  it('detects forged checkpoints: edited clear text, foreign key, broken signature', async () => {
    const dir = await rotatedLog();
    const f = listLogFiles(dir)[0]!;
    const lines = fileLines(f.path);
    const idx = lines.map(parseLine).map((p, i) => (p.kind === 'checkpoint' ? i : -1)).filter((i) => i >= 0);
    const [i1, i2, i3] = idx as [number, number, number];
    const ck = (i: number): CheckpointLine => (parseLine(lines[i]!) as { checkpoint: CheckpointLine }).checkpoint;
    lines[i1] = canonicalize({ ...ck(i1), hash: 'f'.repeat(64) });
    const foreign = signCheckpoint(checkpointPayload({ seq: ck(i2).seq, hash: ck(i2).hash }, new Date()), otherKey);
    lines[i2] = canonicalize(foreign);
    const c3 = ck(i3);
    const parts = c3.jws.split('.');
    lines[i3] = canonicalize({ ...c3, jws: `${parts[0]}.${parts[1]}.${Buffer.alloc(64, 1).toString('base64url')}` });
    writeLines(f.path, lines);
    const e = errors(await verifyDir(dir));
    assert.deepEqual(e.map((x) => x.kind), ['forged_checkpoint', 'forged_checkpoint', 'forged_checkpoint']);
    assert.match(e[0]!.message, /says hash=.* but the signed payload says/);
    assert.match(e[1]!.message, /not a trusted key/);
    assert.match(e[2]!.message, /bad signature/);
    assert.deepEqual(e.map((x) => x.line), [i1 + 1, i2 + 1, i3 + 1]);
  });

  it('catches a rewritten and re-chained history through the signed checkpoints', async () => {
    const dir = tempDir();
    const sink = openSink(dir, { checkpointEvery: 5 });
    fill(sink, 12);
    await sink.close();
    const f = listLogFiles(dir)[0]!;
    const lines = fileLines(f.path);
    // Change record 3 and recompute every later link, as an attacker without the key would.
    let prev: string | null = null;
    for (let i = 0; i < lines.length; i++) {
      const p = parseLine(lines[i]!);
      if (p.kind !== 'record') continue;
      const r = p.record;
      const changed = r.seq === 3 ? { ...r, identity: { ...r.identity, sub: 'mallory' } } : { ...r };
      if (prev !== null && r.seq > 3) changed.prev_hash = sha256Hex(prev);
      lines[i] = canonicalize(changed);
      prev = lines[i]!;
    }
    writeLines(f.path, lines);
    const e = errors(await verifyDir(dir));
    assert.ok(e.length >= 1, 'the rewrite must be detected');
    assert.ok(e.every((x) => x.kind === 'edited'), JSON.stringify(e));
    assert.match(e[0]!.message, /validly signed for seq 5 .* a record in seq 1\.\.5 was edited and the ones after it re-chained/);
    // Without signatures the rewrite is invisible: that is what the key is for.
    const unsigned = await verifyDir(dir, null);
    assert.ok(unsigned.findings.some((x) => x.kind === 'signatures_unchecked'));
  });

  it('resumes the chain after a restart, and after a crash that tore the last line', async () => {
    const dir = tempDir();
    let sink = openSink(dir);
    fill(sink, 3);
    await sink.close();
    sink = openSink(dir);
    assert.equal(sink.resume.reason, 'resumed');
    assert.equal(sink.chainHead.seq, 3);
    fill(sink, 2, 4);
    // Simulate kill -9 in the middle of a write: a partial line, no close().
    const file = join(dir, 'decisions-000001.jsonl');
    appendFileSync(file, '{"schema":"tollgate.decision/v1","decision_id":"torn');
    (sink as unknown as { fd: number }).fd = -1; // abandon it like a dead process would
    await sink.close();
    const warnings: string[] = [];
    sink = openSink(dir, { warn: (m) => warnings.push(m) });
    assert.equal(sink.resume.reason, 'recover');
    assert.equal(sink.resume.seq, 5);
    assert.match(warnings.join('\n'), /incomplete line/);
    fill(sink, 3, 6);
    await sink.close();
    const files = listLogFiles(dir);
    assert.equal(files.length, 2);
    const head = (parseLine(fileLines(files[1]!.path)[0]!) as { head: HeadLine }).head;
    assert.equal(head.reason, 'recover');
    assert.equal(head.torn?.file, 'decisions-000001.jsonl');

    const report = await verifyDir(dir);
    assert.equal(report.ok, true, JSON.stringify(report.findings));
    assert.equal(report.lastSeq, 8);
    const crash = report.findings.find((x) => x.kind === 'crash_recovered');
    assert.ok(crash, 'the torn line is reported, not silently accepted');
    assert.equal(crash.severity, 'warning');
  });

  it('reports a torn line that no restart accounted for as a truncation', async () => {
    const dir = tempDir();
    const sink = openSink(dir);
    fill(sink, 3);
    await sink.close();
    appendFileSync(join(dir, 'decisions-000001.jsonl'), '{"partial":');
    const e = errors(await verifyDir(dir));
    assert.deepEqual(e.map((x) => x.kind), ['truncated']);
    assert.match(e[0]!.message, /chain is intact up to seq 3/);
  });

  it('refuses a second writer on the same directory', async () => {
    const dir = tempDir();
    const sink = openSink(dir);
    assert.throws(() => openSink(dir), DecisionLogLockedError);
    await sink.close();
    const again = openSink(dir);
    await again.close();
  });

  it('keeps the draft untouched and returns the written entry', async () => {
    const dir = tempDir();
    const sink = openSink(dir);
    const draft = Object.freeze(sampleDraft({ i: 1 }));
    const entry = sink.appendEntry(draft);
    assert.equal(entry.record.seq, 1);
    assert.equal((draft as { seq?: number }).seq, undefined);
    assert.equal(readFileSync(join(dir, 'decisions-000001.jsonl'), 'utf8').split('\n')[1], entry.line);
    await sink.close();
  });
});
