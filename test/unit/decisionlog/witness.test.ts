import { strict as assert } from 'node:assert';
import { appendFileSync, existsSync, readFileSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLogsCommand } from '../../../src/cli/logs.js';
import { canonicalize } from '../../../src/decisionlog/canonical.js';
import { checkpointPayload, signCheckpoint } from '../../../src/decisionlog/checkpoint.js';
import { DecisionLogGapError } from '../../../src/decisionlog/file-sink.js';
import { listLogFiles, PUBLIC_KEYS_FILE } from '../../../src/decisionlog/files.js';
import { parseLine } from '../../../src/decisionlog/lines.js';
import { verifyLogFiles, type VerifyReport } from '../../../src/decisionlog/verify.js';
import { defaultWitnessPath, readWitness, WITNESS_SCHEMA } from '../../../src/decisionlog/witness.js';
import { cleanupTempDirs, errors, fileLines, fill, openSink, otherKey, tempDir, trusted, writeLines } from './helpers.js';

/**
 * Issue 10 item 5: a log cut back to an earlier checkpoint, or missing its newest file, used to
 * verify INTACT and the writer resumed over the gap. The witness (an append-only copy of every
 * checkpoint outside the log directory) now makes both refuse / report.
 */

interface Log { dir: string; witness: string }

function newLog(): Log {
  const base = tempDir();
  const dir = join(base, 'decisions');
  return { dir, witness: defaultWitnessPath(dir) };
}

const open = (l: Log, o: Parameters<typeof openSink>[1] = {}) => openSink(l.dir, { witnessPath: l.witness, ...o });

async function verifyWithWitness(l: Log): Promise<VerifyReport> {
  const problems: Array<{ line: number; problem: string }> = [];
  const anchors = [...readWitness(l.witness, (line, problem) => problems.push({ line, problem }))];
  return verifyLogFiles(listLogFiles(l.dir), { keys: trusted(), whole: true, witness: { path: l.witness, anchors, problems } });
}

async function cli(args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await createLogsCommand({ out: (s) => { out += s; }, err: (s) => { out += s; }, env: {}, now: () => new Date() }).run(args);
  return { code, out };
}

/** Index of the line holding the checkpoint for `seq` in a file's lines. */
function checkpointLineIndex(lines: string[], seq: number): number {
  return lines.findIndex((l) => { const p = parseLine(l); return p.kind === 'checkpoint' && p.checkpoint.seq === seq; });
}

describe('decision log witness: truncation and deletion are detected (issue 10 item 5)', () => {
  after(cleanupTempDirs);

  it('copies every checkpoint to the witness, with the file and offset where it was written', async () => {
    const l = newLog();
    const sink = open(l);
    fill(sink, 12); // checkpoints at 5 and 10, and 12 on close
    await sink.close();
    const entries = [...readWitness(l.witness)].map((w) => w.entry);
    assert.deepEqual(entries.map((e) => e.checkpoint.seq), [5, 10, 12]);
    const text = readFileSync(join(l.dir, 'decisions-000001.jsonl'), 'utf8');
    for (const e of entries) {
      assert.equal(e.schema, WITNESS_SCHEMA);
      assert.equal(e.file, 'decisions-000001.jsonl');
      assert.equal(text.slice(e.offset, text.indexOf('\n', e.offset)), canonicalize(e.checkpoint));
    }
    // A clean restart resumes; so does one after a crash that left unsigned records.
    const again = open(l);
    fill(again, 2, 13);
    assert.equal(again.chainHead.seq, 14);
    await again.close();
    assert.equal((await verifyWithWitness(l)).ok, true);
  });

  it('cut back to the last checkpoint: the writer refuses to resume, and verify reports TRUNCATED with file:line (it used to say INTACT)', async () => {
    const l = newLog();
    const sink = open(l);
    fill(sink, 12);
    await sink.close();
    const file = join(l.dir, 'decisions-000001.jsonl');
    const lines = fileLines(file);
    writeLines(file, lines.slice(0, checkpointLineIndex(lines, 10) + 1));

    // Without the witness the cut is invisible: this is what the issue reported.
    const blind = await verifyLogFiles(listLogFiles(l.dir), { keys: trusted(), whole: true });
    assert.equal(blind.ok, true);

    assert.throws(() => open(l), (e: unknown) => {
      assert.ok(e instanceof DecisionLogGapError, String(e));
      assert.equal(e.logEndsAt, 10);
      assert.equal(e.anchoredSeq, 12);
      assert.match(e.message, /ends at seq 10 \(decisions-000001\.jsonl\).*checkpoint for seq 12.*seq 11\.\.12, were removed/);
      assert.match(e.message, /tollgate logs verify .* --witness /);
      return true;
    });
    // Refusing wrote nothing: the evidence is as it was found.
    assert.deepEqual(fileLines(file), lines.slice(0, checkpointLineIndex(lines, 10) + 1));
    assert.equal(existsSync(join(l.dir, 'LOCK')), false);

    const r = await verifyWithWitness(l);
    assert.equal(r.ok, false);
    const t = errors(r).find((f) => f.kind === 'truncated');
    assert.ok(t, JSON.stringify(r.findings));
    assert.equal(t.file, 'decisions-000001.jsonl');
    assert.equal(t.line, checkpointLineIndex(lines, 10)); // the last record (seq 10), just before its checkpoint
    assert.match(t.message, /seq 11\.\.12 are missing/);

    const out = await cli(['verify', l.dir, '--key', join(l.dir, PUBLIC_KEYS_FILE)]);
    assert.equal(out.code, 1);
    assert.match(out.out, /^TRUNCATED/m);
    assert.match(out.out, /truncated\s+decisions-000001\.jsonl:\d+/);
  });

  it('newest file deleted while stopped: refused, and verify names the deleted file', async () => {
    const l = newLog();
    const sink = open(l, { maxFileBytes: 20_000 });
    fill(sink, 40);
    await sink.close();
    const files = listLogFiles(l.dir);
    assert.ok(files.length >= 2);
    unlinkSync(files[files.length - 1]!.path);
    assert.throws(() => open(l, { maxFileBytes: 20_000 }), (e: unknown) => e instanceof DecisionLogGapError && /is missing \(the newest file was deleted\)/.test(e.message));
    const r = await verifyWithWitness(l);
    const t = errors(r).find((f) => f.kind === 'truncated');
    assert.ok(t);
    assert.match(t.message, new RegExp(`${files[files.length - 1]!.name}, where that checkpoint was written, is missing: the newest file was deleted`));
  });

  it('every file deleted: the witness still refuses a fresh start over the old log', async () => {
    const l = newLog();
    const sink = open(l);
    fill(sink, 6);
    await sink.close();
    for (const f of listLogFiles(l.dir)) unlinkSync(f.path);
    assert.throws(() => open(l), (e: unknown) => e instanceof DecisionLogGapError && /has no log files/.test(e.message));
  });

  it('the end rewritten at the anchored seq (same seq, other content): refused, and verify reports the edit against the witness', async () => {
    const l = newLog();
    const sink = open(l);
    fill(sink, 10);
    await sink.close();
    const file = join(l.dir, 'decisions-000001.jsonl');
    const lines = fileLines(file);
    // Replace record 10 and drop the checkpoints: the chain alone still links.
    const i10 = lines.findIndex((x) => { const p = parseLine(x); return p.kind === 'record' && p.record.seq === 10; });
    const rec = JSON.parse(lines[i10]!) as Record<string, unknown>;
    (rec.result as Record<string, unknown>).allow = false;
    writeLines(file, [...lines.slice(0, i10).filter((x) => parseLine(x).kind !== 'checkpoint'), canonicalize(rec)]);
    assert.throws(() => open(l), (e: unknown) => e instanceof DecisionLogGapError && /rewritten/.test(e.message));
    const r = await verifyWithWitness(l);
    assert.ok(errors(r).some((f) => f.kind === 'edited' && /witness holds a signed checkpoint for seq 10/.test(f.message)), JSON.stringify(r.findings));
  });

  it('a witness entry not signed by the trusted key is reported as forged', async () => {
    const l = newLog();
    const sink = open(l);
    fill(sink, 5);
    await sink.close();
    const forged = signCheckpoint(checkpointPayload({ seq: 9, hash: 'f'.repeat(64) }, new Date()), otherKey);
    appendFileSync(l.witness, canonicalize({ type: 'witness', schema: WITNESS_SCHEMA, log: l.dir, file: 'decisions-000001.jsonl', offset: 0, checkpoint: forged }) + '\n');
    const r = await verifyWithWitness(l);
    assert.ok(errors(r).some((f) => f.kind === 'forged_checkpoint' && f.file === l.witness && f.line === 2), JSON.stringify(r.findings));
    assert.ok(!errors(r).some((f) => f.kind === 'truncated'), 'a forged anchor proves nothing about the log');
  });

  it('newest file deleted while the writer runs: detected at the next append, the loss is on record, verify reports it', async () => {
    const l = newLog();
    const warnings: string[] = [];
    const sink = open(l, { warn: (m) => warnings.push(m) });
    fill(sink, 7);
    unlinkSync(join(l.dir, 'decisions-000001.jsonl'));
    fill(sink, 3, 8);
    await sink.close();
    assert.equal(sink.stats().tampered, 1);
    assert.ok(warnings.some((w) => /TAMPERING: decisions-000001\.jsonl was deleted/.test(w)), warnings.join('\n'));
    const head = parseLine(fileLines(join(l.dir, 'decisions-000002.jsonl'))[0]!);
    assert.equal(head.kind, 'head');
    assert.deepEqual((head as { head: { lost?: unknown } }).head.lost, { file: 'decisions-000001.jsonl', reason: 'deleted', bytes_written: (head as { head: { lost: { bytes_written: number } } }).head.lost.bytes_written, bytes_found: 0, seq: 7 });
    const r = await verifyWithWitness(l);
    assert.ok(errors(r).some((f) => f.kind === 'deleted' && f.file === 'decisions-000002.jsonl' && f.line === 1 && /decisions-000001\.jsonl was deleted while authz was writing it/.test(f.message)), JSON.stringify(r.findings));
  });

  it('the file being written truncated under the writer: detected, recorded, reported', async () => {
    const l = newLog();
    const sink = open(l);
    fill(sink, 7);
    const file = join(l.dir, 'decisions-000001.jsonl');
    truncateSync(file, readFileSync(file).indexOf('\n') + 1); // only the head line is left
    fill(sink, 2, 8);
    await sink.close();
    assert.equal(sink.stats().tampered, 1);
    const r = await verifyWithWitness(l);
    assert.ok(errors(r).some((f) => f.kind === 'truncated' && /was truncated while authz was writing it/.test(f.message)), JSON.stringify(r.findings));
  });

  it('a witness that cannot be opened is a clear startup error', () => {
    const l = newLog();
    const notADir = join(tempDir(), 'file');
    writeFileSync(notADir, '');
    assert.throws(() => open(l, { witnessPath: join(notADir, 'w.jsonl') }), /witness .*cannot open it for appending/);
    assert.equal(existsSync(join(l.dir, 'LOCK')), false, 'the lock is released');
  });
});
