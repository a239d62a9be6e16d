import { strict as assert } from 'node:assert';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLogsCommand, type LogsIo } from '../../../src/cli/logs.js';
import { canonicalize } from '../../../src/decisionlog/canonical.js';
import { listLogFiles } from '../../../src/decisionlog/files.js';
import { parseLine } from '../../../src/decisionlog/lines.js';
import type { FileDecisionSink } from '../../../src/decisionlog/file-sink.js';
import { sampleDraft, type SampleOptions } from './fixtures.js';
import { cleanupTempDirs, fileLines, mutateRecord, openSink, otherKey, tempDir, testKey, writeLines } from './helpers.js';

const NOW = new Date('2025-03-10T15:30:00Z');

async function run(argv: string[], extra: Partial<LogsIo> = {}): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const cmd = createLogsCommand({ out: (s) => { out += s; }, err: (s) => { err += s; }, env: {}, now: () => NOW, pollMs: 10, ...extra });
  const code = await cmd.run(argv);
  return { code, out, err };
}

/** A day of traffic: yesterday's and today's calls on two servers. */
function populate(sink: FileDecisionSink): void {
  const rows: SampleOptions[] = [
    { timestamp: '2025-03-08T10:00:00.000Z', sub: 'carol', team: 'billing-ops', server: 'billing', tool: 'delete_records', allow: true, revision: 'rev-1' },
    { timestamp: '2025-03-09T09:15:00.000Z', sub: 'bob', team: 'billing-ops', server: 'billing', tool: 'delete_records', allow: true, revision: 'rev-7' },
    { timestamp: '2025-03-09T11:00:00.000Z', sub: 'eve', team: 'growth', server: 'billing', tool: 'delete_records', allow: false, reasons: ['delete_records requires team billing-ops'], revision: 'rev-7' },
    { timestamp: '2025-03-09T12:00:00.000Z', sub: 'alice', team: 'payments', server: 'billing', tool: 'get_invoice', allow: true, revision: 'rev-7' },
    { timestamp: '2025-03-09T13:00:00.000Z', sub: 'eve', team: 'growth', server: 'search', tool: 'delete_records', allow: false, reasons: ['unknown tool'], revision: 'rev-7' },
    { timestamp: '2025-03-10T08:00:00.000Z', sub: 'eve', team: 'growth', server: 'billing', tool: 'delete_records', allow: false, reasons: ['delete_records requires team billing-ops'], revision: 'rev-8' },
  ];
  rows.forEach((o, i) => sink.append(sampleDraft({ ...o, i: i + 1 })));
}

describe('tollgate logs (CLI)', () => {
  let dir: string;
  before(async () => {
    dir = join(tempDir(), 'decisions');
    const sink = openSink(dir, { checkpointEvery: 2 });
    populate(sink);
    await sink.close();
  });
  after(cleanupTempDirs);

  it('query answers "who called delete_records on billing yesterday, under which revision"', async () => {
    const { code, out } = await run(['query', '--tool', 'delete_records', '--server', 'billing', '--since', 'yesterday', '--until', 'today', '--dir', dir]);
    assert.equal(code, 0);
    const lines = out.trimEnd().split('\n');
    assert.match(lines[0]!, /^TIME\s+DECISION\s+SUB\s+TEAM\s+AGENT\s+GROUPS\s+SERVER\s+TOOL\s+ARGS\s+REVISION\s+REASONS$/);
    assert.equal(lines.length, 3);
    assert.match(lines[1]!, /^2025-03-09T09:15:00Z\s+allow\s+bob\s+billing-ops\s+\S+\s+\S+\s+billing\s+delete_records\s+\S+\s+rev-7\s+-$/);
    assert.match(lines[2]!, /^2025-03-09T11:00:00Z\s+deny\s+eve\s+growth\s+\S+\s+\S+\s+billing\s+delete_records\s+\S+\s+rev-7\s+delete_records requires team billing-ops$/);
  });

  it('query --json prints full records, one per line, and --limit stops early', async () => {
    const { code, out } = await run(['query', '--decision', 'deny', '--json', '--dir', dir]);
    assert.equal(code, 0);
    const recs = out.trim().split('\n').map((l) => JSON.parse(l) as { seq: number; result: { allow: boolean } });
    assert.deepEqual(recs.map((r) => r.seq), [3, 5, 6]);
    assert.ok(recs.every((r) => r.result.allow === false));
    const limited = await run(['query', '--json', '--limit', '2', '--dir', dir]);
    assert.equal(limited.out.trim().split('\n').length, 2);
  });

  it('query with nothing matching says so on stderr and succeeds', async () => {
    const r = await run(['query', '--sub', 'nobody', '--dir', dir]);
    assert.equal(r.code, 0);
    assert.equal(r.out, '');
    assert.match(r.err, /no matching decisions/);
  });

  it('stats ranks denied tools, teams and reasons', async () => {
    const { code, out } = await run(['stats', '--dir', dir]);
    assert.equal(code, 0);
    assert.match(out, /^6 decisions from 2025-03-08T10:00:00Z to 2025-03-10T08:00:00Z: 3 allowed, 3 denied/);
    assert.match(out, /Top denied tools\nCOUNT\s+SERVER\s+TOOL\n2\s+billing\s+delete_records\n1\s+search\s+delete_records\n/);
    assert.match(out, /Denies per team\nCOUNT\s+TEAM\n3\s+growth\n/);
    assert.match(out, /Denies per reason\nCOUNT\s+REASON\n2\s+delete_records requires team billing-ops\n1\s+unknown tool\n/);
    const json = JSON.parse((await run(['stats', '--json', '--since', 'yesterday', '--dir', dir])).out) as { total: number; denied: number };
    assert.deepEqual([json.total, json.denied], [5, 3]);
  });

  it('tail shows the last N', async () => {
    const { code, out } = await run(['tail', '-n', '2', '--dir', dir]);
    assert.equal(code, 0);
    const lines = out.trimEnd().split('\n');
    assert.equal(lines.length, 3);
    assert.match(lines[1]!, /2025-03-09T13:00:00Z\s+deny\s+eve/);
    assert.match(lines[2]!, /2025-03-10T08:00:00Z\s+deny\s+eve/);
  });

  it('tail -f prints new records as they are written, across a rotation, until stopped', async () => {
    const live = join(tempDir(), 'decisions');
    const sink = openSink(live, { maxFileBytes: 8000 });
    populate(sink);
    const ac = new AbortController();
    let out = '';
    const cmd = createLogsCommand({ out: (s) => { out += s; }, err: () => undefined, env: {}, now: () => NOW, pollMs: 10, signal: ac.signal });
    const running = cmd.run(['tail', '-f', '-n', '1', '--json', '--dir', live]);
    const seen = (): number[] => out.trim().split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { seq: number }).seq);
    for (let i = 0; i < 200 && seen().length < 1; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(seen(), [6]);
    for (let i = 7; i <= 14; i++) sink.append(sampleDraft({ i, sub: i % 2 ? 'odd' : 'even' }));
    for (let i = 0; i < 500 && seen().length < 9; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(listLogFiles(live).length > 1, 'the writer rotated while tail was following');
    ac.abort();
    assert.equal(await running, 0);
    assert.deepEqual(seen(), [6, 7, 8, 9, 10, 11, 12, 13, 14]);
    await sink.close();
  });

  it('verify says INTACT for an untouched log, and exits 1 naming the edited record', async () => {
    const d = join(tempDir(), 'decisions');
    const sink = openSink(d, { checkpointEvery: 2 });
    populate(sink);
    await sink.close();
    const keyFile = join(d, '..', 'trusted.jwks');
    writeFileSync(keyFile, JSON.stringify({ keys: [testKey.publicJwk] }));

    const ok = await run(['verify', d, '--key', keyFile]);
    assert.equal(ok.code, 0, ok.out);
    assert.match(ok.out, /6 records \(seq 1\.\.6\), 3 checkpoints \(3 signatures valid, signed through seq 6\)/);
    assert.match(ok.out, /INTACT/);

    const f = listLogFiles(d)[0]!;
    const lines = fileLines(f.path);
    const i = lines.findIndex((l) => { const p = parseLine(l); return p.kind === 'record' && p.record.seq === 3; });
    const p = parseLine(lines[i]!);
    assert.equal(p.kind, 'record');
    if (p.kind === 'record') lines[i] = canonicalize({ ...p.record, identity: { ...p.record.identity, sub: 'someone-else' } });
    writeLines(f.path, lines);
    const broken = await run(['verify', d, '--key', keyFile]);
    assert.equal(broken.code, 1);
    assert.match(broken.out, /BROKEN: 1 problem/);
    assert.match(broken.out, new RegExp(`edited\\s+${f.name}:${i + 1}\\n\\s+record seq 3 at ${f.name}:${i + 1} was altered`));
    const json = JSON.parse((await run(['verify', d, '--key', keyFile, '--json'])).out) as { ok: boolean; findings: Array<{ kind: string }> };
    assert.equal(json.ok, false);
    assert.equal(json.findings[0]!.kind, 'edited');
  });

  it('verify with the key kept next to the log warns about it; --strict turns warnings into failure; a wrong key fails', async () => {
    const d = join(tempDir(), 'decisions');
    const sink = openSink(d);
    populate(sink);
    await sink.close();
    const plain = await run(['verify', '--dir', d]);
    assert.equal(plain.code, 0);
    assert.match(plain.out, /key_from_log_dir/);
    assert.equal((await run(['verify', '--dir', d, '--strict'])).code, 1);
    const wrong = join(d, '..', 'wrong.jwks');
    writeFileSync(wrong, JSON.stringify(otherKey.publicJwk));
    const r = await run(['verify', d, '--key', wrong]);
    assert.equal(r.code, 1);
    assert.match(r.out, /forged_checkpoint/);
  });

  it('verify of a live log treats an incomplete last line as a write in progress, not a truncation', async () => {
    const d = join(tempDir(), 'decisions');
    const sink = openSink(d);
    populate(sink);
    const f = listLogFiles(d).pop()!;
    appendFileSync(f.path, '{"schema":"tollgate.decision/v1","decis');
    const r = await run(['verify', d]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /write_in_progress/);
    (sink as unknown as { fd: number }).fd = -1; // nothing more goes to this file
    await sink.close();
    const after = await run(['verify', d]);
    assert.equal(after.code, 1, 'with no live writer it is a truncated tail');
    assert.match(after.out, /truncated/);
  });

  it('every subcommand documents every flag in --help', async () => {
    const flags: Record<string, string[]> = {
      query: ['--since', '--until', '--sub', '--team', '--agent', '--server', '--namespace', '--tool', '--method', '--decision', '--reason', '--id', '--revision', '--json', '--limit', '--dir', '--nats', '--stream', '--subject-prefix', '--help'],
      tail: ['-n, --lines', '-f, --follow', '--json', '--since', '--tool', '--dir', '--nats', '--stream', '--subject-prefix', '--help'],
      stats: ['--top', '--json', '--since', '--until', '--team', '--reason', '--dir', '--nats', '--help'],
      verify: ['FILE|DIR', '--dir', '--key', '--strict', '--json', '--help', 'Exit status'],
      export: ['--format', '--out', '--endpoint', '--header', '--batch', '--limit', '--since', '--team', '--dir', '--nats', '--help', 'Exit status'],
    };
    for (const [sub, list] of Object.entries(flags)) {
      const { code, out } = await run([sub, '--help']);
      assert.equal(code, 0);
      for (const flag of list) assert.ok(out.includes(flag), `${sub} --help lacks ${flag}`);
    }
    const top = await run(['--help']);
    assert.match(top.out, /query .*\n.*tail .*\n.*stats .*\n.*export .*\n.*verify /);
  });

  it('reports bad usage with exit 2 and a missing log with exit 1', async () => {
    const bad = await run(['query', '--decision', 'maybe', '--dir', dir]);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /--decision must be allow or deny.*\nRun `tollgate logs query --help`/);
    assert.equal((await run(['query', '--since', 'last tuesday', '--dir', dir])).code, 2);
    assert.equal((await run(['query', '--bogus'])).code, 2);
    assert.equal((await run(['frobnicate'])).code, 2);
    const none = await run(['query', '--dir', join(dir, 'nope')]);
    assert.equal(none.code, 1);
    assert.match(none.err, /no decision log in .*nope: pass --dir DIR, set TOLLGATE_STATE_DIR/);
    const verifyNone = await run(['verify', join(dir, 'nope')]);
    assert.equal(verifyNone.code, 2);
  });

  it('defaults to $TOLLGATE_STATE_DIR/decisions', async () => {
    const { code, out } = await run(['query', '--json'], { env: { TOLLGATE_STATE_DIR: join(dir, '..') } });
    assert.equal(code, 0);
    assert.equal(out.trim().split('\n').length, 6);
  });

  /** A copy of the populated log with one record rewritten. */
  async function logWith(seq: number, edit: (r: Record<string, unknown>) => void): Promise<{ dir: string; where: string }> {
    const d = join(tempDir(), 'decisions');
    const sink = openSink(d, { checkpointEvery: 2 });
    populate(sink);
    await sink.close();
    const f = listLogFiles(d)[0]!;
    return { dir: d, where: `${f.name}:${mutateRecord(f.path, seq, edit)}` };
  }

  it('query, tail, stats, export skip a record of the wrong shape, naming it on stderr, instead of failing', async () => {
    const edits: Array<[(r: Record<string, unknown>) => void, string]> = [
      [(r) => { r.identity = null; }, 'identity: expected an object'],
      [(r) => { r.mcp = null; }, 'mcp: expected an object'],
      [(r) => { r.mcp = 5; }, 'mcp: expected an object'],
      [(r) => { r.result = null; }, 'result: expected an object'],
      [(r) => { r.result = 'x'; }, 'result: expected an object'],
      [(r) => { (r.result as Record<string, unknown>).reasons = 'str'; }, 'result.reasons: expected an array'],
      [(r) => { (r.result as Record<string, unknown>).reasons = null; }, 'result.reasons: expected an array'],
      [(r) => { r.timestamp = 5; }, 'timestamp: expected an RFC 3339 time (a string)'],
      [(r) => { (r.identity as Record<string, unknown>).team = [1]; }, 'identity.team: expected a string or null'],
      [(r) => { (r.mcp as Record<string, unknown>).tool = 5; }, 'mcp.tool: expected a string or null'],
      [(r) => { r.labels = null; }, 'labels: expected an object'],
    ];
    const subcommands = [['query'], ['query', '--json', '--accounting'], ['tail'], ['stats'], ['stats', '--by', 'team'], ['export', '--format', 'ocsf'], ['export', '--format', 'otlp']];
    for (const [edit, problem] of edits) {
      const { dir: d, where } = await logWith(3, edit);
      for (const argv of subcommands) {
        const r = await run([...argv, '--dir', d]);
        const what = `${argv.join(' ')} with ${problem}`;
        assert.equal(r.code, 0, `${what}: ${r.err}`);
        assert.ok(r.err.includes(`tollgate logs ${argv[0]}: skipped 1 malformed record (${where}: ${problem})`), `${what}: ${r.err}`);
      }
      const q = await run(['query', '--json', '--dir', d]);
      assert.deepEqual(q.out.trim().split('\n').map((l) => (JSON.parse(l) as { seq: number }).seq), [1, 2, 4, 5, 6], 'the others are read');
      const v = await run(['verify', d]);
      assert.equal(v.code, 1, 'verify judges the chain: the record was edited');
      assert.match(v.out, /edited\s+decisions-000001\.jsonl/);
      assert.doesNotMatch(v.out, /malformed/);
    }
  });

  it('tail -f reports a malformed record written while it follows', async () => {
    const live = join(tempDir(), 'decisions');
    const sink = openSink(live);
    populate(sink);
    const ac = new AbortController();
    let out = '';
    let err = '';
    const cmd = createLogsCommand({ out: (s) => { out += s; }, err: (s) => { err += s; }, env: {}, now: () => NOW, pollMs: 10, signal: ac.signal });
    const running = cmd.run(['tail', '-f', '-n', '1', '--json', '--dir', live]);
    for (let i = 0; i < 200 && !out; i++) await new Promise((r) => setTimeout(r, 10));
    const f = listLogFiles(live).pop()!;
    // A record that chains like any other, with identity null (a writer bug, or an edit).
    appendFileSync(f.path, canonicalize({ ...sampleDraft({ i: 7 }), identity: null, seq: 7, prev_hash: 'f'.repeat(64) }) + '\n');
    for (let i = 0; i < 300 && !err.includes('skipped'); i++) await new Promise((r) => setTimeout(r, 10));
    ac.abort();
    assert.equal(await running, 0);
    assert.match(err, new RegExp(`^tollgate logs tail: skipped 1 malformed record \\(${f.name}:\\d+: identity: expected an object\\)`, 'm'));
    assert.equal(err.match(/skipped/g)!.length, 1, 'reported once');
    await sink.close();
  });

  it('a log file of garbage is no decision log (exit 1, naming its first line); garbage among records is counted on stderr', async () => {
    const junk = join(tempDir(), 'decisions');
    mkdirSync(junk);
    writeFileSync(join(junk, 'decisions-000001.jsonl'), Buffer.concat([Buffer.from('hello\n'), Buffer.from([0x00, 0xff, 0xfe, 0x0a])]));
    for (const argv of [['query'], ['tail'], ['stats'], ['stats', '--by', 'team'], ['export', '--format', 'ocsf']]) {
      const r = await run([...argv, '--dir', junk]);
      assert.equal(r.code, 1, `${argv.join(' ')}: ${r.err}`);
      assert.match(r.err, new RegExp(`^tollgate logs ${argv[0]}: .*decisions holds no decision log: none of its 2 line\\(s\\) is a decision record, checkpoint or file head \\(decisions-000001\\.jsonl:1: not valid JSON`));
      assert.doesNotMatch(r.err, /no matching decisions/);
    }

    const { dir: d } = await logWith(1, () => undefined);
    const f = listLogFiles(d)[0]!;
    appendFileSync(f.path, 'garbage\n');
    const r = await run(['query', '--json', '--dir', d]);
    assert.equal(r.code, 0);
    assert.equal(r.out.trim().split('\n').length, 6);
    assert.match(r.err, new RegExp(`skipped 1 unreadable line \\(${f.name}:${fileLines(f.path).length}: not valid JSON`));
  });

  it('verify exits 2, not 1 ("broken"), for a key it cannot read or that holds no key', async () => {
    const d = join(tempDir(), 'decisions');
    const sink = openSink(d);
    populate(sink);
    await sink.close();
    const garbage = join(d, '..', 'garbage.key');
    writeFileSync(garbage, 'not a key\n');
    const empty = join(d, '..', 'empty.jwks');
    writeFileSync(empty, '{"keys":[]}');
    const cases: Array<[string, RegExp]> = [
      [join(d, '..', 'nonexistent.jwks'), /--key .*nonexistent\.jwks: cannot read it: ENOENT/],
      [garbage, /--key .*garbage\.key: not a JWK, JWK Set or PEM key/],
      [empty, /--key .*empty\.jwks holds no key/],
    ];
    for (const [key, message] of cases) {
      const r = await run(['verify', d, '--key', key]);
      assert.equal(r.code, 2, `${key}: ${r.err}`);
      assert.match(r.err, message);
      assert.equal(r.out, '');
    }
    writeFileSync(join(d, 'checkpoint-keys.jwks'), 'garbage');
    const beside = await run(['verify', d]);
    assert.equal(beside.code, 2);
    assert.match(beside.err, /the public key file beside the log, .*checkpoint-keys\.jwks: not a JWK/);
  });

  it('verify says an empty file or one that is no decision log is nothing to verify (exit 2), and a log file without its head line is broken', async () => {
    const base = tempDir();
    const emptyFile = join(base, 'anything.txt');
    writeFileSync(emptyFile, '');
    const emptyDir = join(base, 'empty');
    mkdirSync(emptyDir);
    writeFileSync(join(emptyDir, 'decisions-000001.jsonl'), '');
    for (const target of [emptyFile, emptyDir, join(emptyDir, 'decisions-000001.jsonl')]) {
      const r = await run(['verify', target]);
      assert.equal(r.code, 2, `${target}: ${r.out}`);
      assert.match(r.err, /nothing to verify: .* is empty/);
      assert.doesNotMatch(r.out, /INTACT/);
    }
    const text = join(base, 'notes.txt');
    writeFileSync(text, 'root:x:0:0:root:/root:/bin/bash\n{"a":1}\n');
    const notLog = await run(['verify', text]);
    assert.equal(notLog.code, 2);
    assert.match(notLog.err, /notes\.txt is not a decision log: not one line in it is a decision record, checkpoint or file head \(line at notes\.txt:1 is not valid JSON/);

    const { dir: d } = await logWith(1, () => undefined);
    const f = listLogFiles(d)[0]!;
    const lines = fileLines(f.path);
    assert.equal(parseLine(lines[0]!).kind, 'head');
    writeLines(f.path, lines.slice(1));
    for (const target of [d, f.path]) {
      const r = await run(['verify', target]);
      assert.equal(r.code, 1, r.out);
      assert.match(r.out, new RegExp(`deleted\\s+${f.name}:1\\n\\s+${f.name} has no head line: its first line is record seq 1`));
    }
    const json = JSON.parse((await run(['verify', d, '--json'])).out) as { ok: boolean; heads: number; records: number };
    assert.deepEqual([json.ok, json.heads, json.records], [false, 0, 6]);
  });
});
