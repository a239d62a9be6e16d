import { strict as assert } from 'node:assert';
import { request } from 'node:http';
import { get as httpsGet } from 'node:https';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createReviewCommand } from '../../../src/cli/review.js';
import { canonicalize } from '../../../src/decisionlog/canonical.js';
import { listLogFiles } from '../../../src/decisionlog/files.js';
import { LogIndex } from '../../../src/review/log-index.js';
import { burnDown, chartTeamFromParams, FilterError, filterFromParams, parseCursor, summary, timeline } from '../../../src/review/query.js';
import { ReviewServer } from '../../../src/review/server.js';
import { barChart, burnChart } from '../../../src/review/svg.js';
import { VerifyWatch } from '../../../src/review/verify-watch.js';
import { createCa, issueCertificate } from '../../../src/pki/ca.js';
import { cleanupTempDirs, fileLines, openSink, tempDir, writeLines } from '../decisionlog/helpers.js';
import { HOSTILE_TOOL, writeReviewLog } from './fixture.js';

const NOW = new Date('2025-03-10T00:00:00Z');
const q = (s: string): URLSearchParams => new URLSearchParams(s);

async function logDir(n = 60): Promise<string> {
  const dir = join(tempDir('tg-review-'), 'decisions');
  const sink = openSink(dir, { checkpointEvery: 10 });
  writeReviewLog(sink, n);
  await sink.close();
  return dir;
}

async function indexOf(dir: string): Promise<LogIndex> {
  const ix = new LogIndex();
  assert.equal(await ix.refresh(listLogFiles(dir)), true);
  return ix;
}

interface Got { status: number; headers: Record<string, string | string[] | undefined>; body: string }
function get(port: number, path: string, o: { method?: string; host?: string; auth?: string } = {}): Promise<Got> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host: o.host ?? `127.0.0.1:${port}` };
    if (o.auth) headers.authorization = `Basic ${Buffer.from(o.auth).toString('base64')}`;
    const req = request({ host: '127.0.0.1', port, path, method: o.method ?? 'GET', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('tollgate review: index and queries (issue 16)', () => {
  after(cleanupTempDirs);

  it('indexes decisions, links accounting records by decision id, and pages newest first by cursor', async () => {
    const ix = await indexOf(await logDir());
    assert.equal(ix.size, 60);
    const p1 = timeline(ix, filterFromParams(q(''), NOW), parseCursor(null, ix.size), 25);
    assert.equal(p1.rows.length, 25);
    assert.equal(p1.rows[0]!.time, '2025-03-09T01:00:00.000Z', 'newest first');
    const p2 = timeline(ix, filterFromParams(q(''), NOW), parseCursor(p1.next, ix.size), 25);
    const p3 = timeline(ix, filterFromParams(q(''), NOW), parseCursor(p2.next, ix.size), 25);
    assert.equal(p3.rows.length, 10);
    assert.equal(p3.next, null);
    const all = [...p1.rows, ...p2.rows, ...p3.rows].map((r) => r.row);
    assert.deepEqual(all, [...Array(60).keys()].reverse(), 'pages neither skip nor repeat');
    const allowed = p1.rows.find((r) => r.decision === 'allow')!;
    assert.equal(allowed.tokens.out, 200 + allowed.row + 1, 'response tokens from the accounting record');
    assert.equal(p1.rows.find((r) => r.decision === 'deny')!.tokens.out, null);
  });

  it('filters by team, subject, agent, server, tool glob, decision, reason, revision and time', async () => {
    const ix = await indexOf(await logDir());
    const rows = (s: string): number[] => timeline(ix, filterFromParams(q(s), NOW), ix.size, 200).rows.map((r) => r.row + 1);
    assert.deepEqual(rows('team=growth&decision=deny'), [58, 52, 46, 40, 34, 28, 22, 16, 10, 4]);
    assert.deepEqual(rows('tool=delete_*&revision=rev-1&server=billing'), [22, 10]);
    assert.deepEqual(rows('reason=REQUIRES%20TEAM&since=2025-03-09T00:50:00Z'), [58, 52]);
    assert.deepEqual(rows('until=2025-03-09T00:03:00Z'), [2, 1]);
    // payments: i % 3 == 0; user-3: i % 4 == 3; agent-1: i odd.
    assert.deepEqual(rows('sub=payments-user-3&agent=agent-1'), [51, 39, 27, 15, 3]);
    assert.deepEqual(rows('team=nobody'), []);
    assert.deepEqual(rows('decision=error'), []);
    assert.deepEqual(rows(`tool=${encodeURIComponent(HOSTILE_TOOL)}`), [7]);
  });

  it('refuses unknown, repeated or malformed parameters instead of widening the view', () => {
    assert.throws(() => filterFromParams(q('teem=x'), NOW), FilterError);
    assert.throws(() => filterFromParams(q('team=a&team=b'), NOW), FilterError);
    assert.throws(() => filterFromParams(q('decision=maybe'), NOW), FilterError);
    assert.throws(() => filterFromParams(q('since=last%20tuesday'), NOW), /since: .* is not a time/);
    assert.throws(() => filterFromParams(q(`tool=${'a'.repeat(300)}`), NOW), /longer than 256/);
    assert.throws(() => chartTeamFromParams(q(`team_chart=${'a'.repeat(257)}`)), /team_chart: longer than 256/);
    assert.equal(chartTeamFromParams(q(`team_chart=${'a'.repeat(256)}`)), 'a'.repeat(256));
    assert.throws(() => chartTeamFromParams(q('')), /team_chart: which team to draw/);
    assert.throws(() => parseCursor('-1', 10), FilterError);
    assert.throws(() => parseCursor('../../etc', 10), FilterError);
  });

  it('summarises the matching records: counts, top denied tools and teams', async () => {
    const ix = await indexOf(await logDir());
    const s = summary(ix, filterFromParams(q(''), NOW));
    assert.equal(s.matched, 60);
    assert.equal(s.denied, 10);
    assert.deepEqual(s.topDeniedTeams, [{ key: 'growth', count: 10 }]);
    assert.deepEqual(s.topDeniedTools.map((t) => [t.server, t.tool, t.count]), [['billing', 'delete_records', 5], ['search', 'delete_records', 5]]);
    assert.equal(summary(ix, filterFromParams(q('revision=rev-2'), NOW)).matched, 30);
  });

  it('draws a team\'s budget burn-down from the standings in its records', async () => {
    const ix = await indexOf(await logDir());
    const b = burnDown(ix, filterFromParams(q(''), NOW), 'payments');
    assert.equal(b.kind, 'budget');
    assert.equal(b.series.length, 1);
    assert.equal(b.series[0]!.name, 'team-payments-daily');
    assert.equal(b.series[0]!.limit, 5000);
    const values = b.series[0]!.points.map((p) => p[1]);
    assert.ok(values.length > 5);
    assert.ok(values.every((v, i) => i === 0 || v < values[i - 1]!), 'remaining only goes down');
    assert.equal(values[values.length - 1], 5000 - 20 * 100);
    const svg = burnChart(b);
    assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assert.match(svg, /<path d="M[\d.]+,[\d.]+( L[\d.]+,[\d.]+)+"/);
  });

  it('escapes caller data in charts', () => {
    const svg = barChart('Top denied tools', [{ key: HOSTILE_TOOL, count: 3 }, { key: 'a\u0000b&c', count: 1 }]);
    assert.ok(!svg.includes('<img'), svg);
    assert.ok(svg.includes('&lt;img src=x onerror=&quot;'));
    assert.ok(svg.includes('a\ufffdb&amp;c'));
  });

  it('follows a growing log: a refresh reads only what was appended; a rewritten log is refused', async () => {
    const dir = await logDir(30);
    const ix = await indexOf(dir);
    assert.equal(ix.size, 30);
    const sink = openSink(dir, { checkpointEvery: 10 });
    writeReviewLog(sink, 40).slice(30);
    await sink.close();
    assert.equal(await ix.refresh(listLogFiles(dir)), true);
    assert.equal(ix.size, 70);
    const f = listLogFiles(dir)[0]!;
    writeLines(f.path, fileLines(f.path).slice(0, 5));
    assert.equal(await ix.refresh(listLogFiles(dir)), false, 'a shrunk file means the index must be rebuilt');
  });
});

describe('tollgate review: HTTP API (issue 16)', function () {
  this.timeout(30_000);
  let dir: string;
  let server: ReviewServer;
  before(async () => {
    dir = await logDir();
    server = await ReviewServer.start({ host: '127.0.0.1', port: 0, files: () => listLogFiles(dir), verify: new VerifyWatch({ dir, files: () => listLogFiles(dir), flags: [], everyMs: 200 }), password: null, refreshMs: 0 });
  });
  after(async () => {
    await server.close();
    cleanupTempDirs();
  });

  it('serves the page under a strict CSP, and the API as JSON', async () => {
    const page = await get(server.port, '/');
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-security-policy']), /default-src 'none'; script-src 'self';/);
    assert.equal(page.headers['x-content-type-options'], 'nosniff');
    assert.ok(!/<script>/.test(page.body), 'no inline script');
    const t = await get(server.port, '/api/timeline?team=growth&decision=deny&limit=3');
    assert.equal(t.status, 200);
    const body = JSON.parse(t.body) as { rows: Array<{ row: number; team: string }>; next: string };
    assert.deepEqual(body.rows.map((r) => r.row + 1), [58, 52, 46]);
    const t2 = JSON.parse((await get(server.port, `/api/timeline?team=growth&decision=deny&limit=3&cursor=${body.next}`)).body) as typeof body;
    assert.deepEqual(t2.rows.map((r) => r.row + 1), [40, 34, 28]);
  });

  it('never lets caller data out unescaped: JSON escapes < > &, SVG escapes markup', async () => {
    const t = await get(server.port, `/api/timeline?tool=${encodeURIComponent(HOSTILE_TOOL)}`);
    assert.ok(!t.body.includes('<img'), t.body);
    assert.equal((JSON.parse(t.body) as { rows: Array<{ tool: string }> }).rows[0]!.tool, HOSTILE_TOOL);
    const svg = await get(server.port, '/charts/denied-tools.svg');
    assert.equal(svg.headers['content-type'], 'image/svg+xml; charset=utf-8');
    assert.match(svg.body, /delete_records/);
  });

  it('shows a record in full: masked input, reasons, delegation, revision, tokens and its accounting record', async () => {
    const d = JSON.parse((await get(server.port, '/api/record?row=10')).body) as {
      place: { file: string; line: number }; revision: string; tokens: { in: number; out: number };
      record: { decision_id: string; identity: { delegation: unknown[] }; masked: string[]; input: { mcp: { arguments: { password: string } } } };
      accounting: { place: { line: number }; record: { decision_id: string; tokens: { response: number } } };
    };
    assert.equal(d.record.decision_id, '00000000-0000-4000-8000-000000000011');
    assert.deepEqual(d.record.identity.delegation, [{ sub: 'gateway', act: 'call_tool' }]);
    assert.equal(d.record.input.mcp.arguments.password, '[masked]');
    assert.deepEqual(d.record.masked, ['input.mcp.arguments.password']);
    assert.equal(d.revision, 'rev-1');
    assert.deepEqual(d.tokens, { in: 23, out: 211 });
    assert.equal(d.accounting.record.decision_id, d.record.decision_id);
    assert.equal(d.accounting.place.line, d.place.line + 1);
    assert.match(d.place.file, /^decisions-\d{6}\.jsonl$/);
  });

  it('is read-only and serves nothing outside its routes', async () => {
    for (const m of ['POST', 'PUT', 'DELETE']) {
      const r = await get(server.port, '/api/timeline', { method: m });
      assert.equal(r.status, 405);
      assert.equal(r.headers.allow, 'GET, HEAD');
    }
    for (const p of ['/static/../../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/decisions-000001.jsonl', '/static/review.js/../../LOCK']) {
      assert.equal((await get(server.port, p)).status, 404, p);
    }
    assert.equal((await get(server.port, '/api/record?row=../../etc/passwd')).status, 404);
    assert.equal((await get(server.port, '/api/record?row=99999')).status, 404);
    assert.equal((await get(server.port, '/api/timeline?cursor=abc')).status, 400);
  });

  it('caps the burn-down chart\'s team_chart at 256 characters, like every filter value', async () => {
    const long = await get(server.port, `/charts/burndown.svg?team_chart=${'g'.repeat(10_000)}`);
    assert.equal(long.status, 400);
    assert.match((JSON.parse(long.body) as { error: string }).error, /^team_chart: longer than 256 characters$/);
    assert.equal((await get(server.port, '/charts/burndown.svg?team_chart=payments')).status, 200);
  });

  it('answers only to a loopback Host (no DNS rebinding)', async () => {
    assert.equal((await get(server.port, '/api/summary', { host: 'evil.example:80' })).status, 421);
    assert.equal((await get(server.port, '/api/summary', { host: `localhost:${server.port}` })).status, 200);
  });

  it('reports the chain intact, then the exact file:line of a break once the log is tampered with', async () => {
    type View = { state: string; ok: boolean; summary: string; findings: Array<{ file: string; line: number; kind: string; severity: string }> };
    const waitFor = async (pred: (v: View) => boolean): Promise<View> => {
      for (let i = 0; i < 150; i++) {
        const v = JSON.parse((await get(server.port, '/api/verify')).body) as View;
        if (pred(v)) return v;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error('verification did not finish');
    };
    const ok = await waitFor((v) => v.state === 'done');
    assert.equal(ok.ok, true, ok.summary);
    assert.match(ok.summary, /^INTACT/);
    const f = listLogFiles(dir)[0]!;
    const lines = fileLines(f.path);
    const i = lines.findIndex((l) => l.includes('000000000020'));
    const rec = JSON.parse(lines[i]!) as { result: { allow: boolean } };
    rec.result.allow = !rec.result.allow;
    lines[i] = canonicalize(rec);
    writeLines(f.path, lines);
    const broken = await waitFor((v) => v.state === 'done' && v.ok === false);
    const e = broken.findings.filter((x) => x.severity === 'error');
    assert.equal(e[0]!.kind, 'edited');
    assert.equal(`${e[0]!.file}:${e[0]!.line}`, `${f.name}:${i + 1}`);
    assert.match(broken.summary, new RegExp(`^BROKEN at ${f.name}:${i + 1}`));
  });
});

describe('tollgate review: exposure (issue 16)', function () {
  this.timeout(10_000);
  after(cleanupTempDirs);

  it('refuses a non-loopback address without a login', async () => {
    const dir = await logDir(3);
    let err = '';
    await assert.rejects(createReviewCommand({ out: () => undefined, err: (s) => { err += s; }, env: {} }).run(['--dir', dir, '--host', '0.0.0.0', '--port', '0']), /refusing to serve decision records on 0.0.0.0 without a login/);
    assert.equal(err, '');
  });

  it('asks for the password when bound elsewhere, and checks it', async () => {
    const dir = await logDir(3);
    const pw = join(dir, '..', 'pw');
    writeFileSync(pw, 'correct horse battery\n', { mode: 0o600 });
    const ac = new AbortController();
    let srv: ReviewServer | null = null;
    const done = createReviewCommand({ out: () => undefined, err: () => undefined, env: {}, signal: ac.signal, listening: (s) => { srv = s; } })
      .run(['--dir', dir, '--host', '0.0.0.0', '--port', '0', '--password-file', pw]);
    for (let i = 0; i < 100 && !srv; i++) await new Promise((r) => setTimeout(r, 20));
    const port = (srv as unknown as ReviewServer).port;
    const anon = await get(port, '/api/summary');
    assert.equal(anon.status, 401);
    assert.match(String(anon.headers['www-authenticate']), /^Basic realm="tollgate review"/);
    assert.equal((await get(port, '/', { auth: 'x:wrong password!!' })).status, 401);
    assert.equal((await get(port, '/api/summary', { auth: 'reviewer:correct horse battery' })).status, 200);
    ac.abort();
    assert.equal(await done, 0);
  });

  it('serves HTTPS with --tls-cert/--tls-key, login still required', async () => {
    const dir = await logDir(3);
    const ca = await createCa('review test CA');
    const leaf = await issueCertificate(ca, { commonName: '127.0.0.1', ips: ['127.0.0.1'], usage: 'server' });
    const [pw, cert, key] = ['pw', 'cert.pem', 'key.pem'].map((n) => join(dir, '..', n));
    writeFileSync(pw!, 'correct horse battery\n');
    writeFileSync(cert!, leaf.certPem);
    writeFileSync(key!, leaf.keyPem);
    const ac = new AbortController();
    let srv: ReviewServer | null = null;
    let out = '';
    const done = createReviewCommand({ out: (s) => { out += s; }, err: () => undefined, env: {}, signal: ac.signal, listening: (s) => { srv = s; } })
      .run(['--dir', dir, '--host', '0.0.0.0', '--port', '0', '--password-file', pw!, '--tls-cert', cert!, '--tls-key', key!]);
    for (let i = 0; i < 100 && !srv; i++) await new Promise((r) => setTimeout(r, 20));
    const port = (srv as unknown as ReviewServer).port;
    assert.match(out, /serving https:\/\/0\.0\.0\.0:\d+\/ \(read-only, login required\)/);
    const status = (auth: string | null): Promise<number> => new Promise((resolve, reject) => {
      const headers: Record<string, string> = auth ? { authorization: `Basic ${Buffer.from(auth).toString('base64')}` } : {};
      httpsGet({ host: '127.0.0.1', port, path: '/api/status', ca: ca.certPem, headers }, (res) => { res.resume(); resolve(res.statusCode ?? 0); }).on('error', reject);
    });
    assert.equal(await status(null), 401);
    assert.equal(await status('r:correct horse battery'), 200);
    ac.abort();
    assert.equal(await done, 0);
  });

  it('--state DIR reviews DIR/decisions, verified with the keys there, not $TOLLGATE_STATE_DIR\'s or ./.state\'s log', async () => {
    const mine = await logDir(7);
    const other = await logDir(3);
    const ac = new AbortController();
    let srv: ReviewServer | null = null;
    const done = createReviewCommand({ out: () => undefined, err: () => undefined, env: { TOLLGATE_STATE_DIR: dirname(other) }, signal: ac.signal, listening: (s) => { srv = s; } })
      .run(['--state', dirname(mine), '--port', '0']);
    try {
      for (let i = 0; i < 100 && !srv; i++) await new Promise((r) => setTimeout(r, 20));
      const port = (srv as unknown as ReviewServer).port;
      await (srv as unknown as ReviewServer).indexed();
      assert.equal((JSON.parse((await get(port, '/api/status')).body) as { indexed: number }).indexed, 7, 'the records of --state, not of $TOLLGATE_STATE_DIR');
      let v: { state: string; ok: boolean; summary: string } = { state: '', ok: false, summary: '' };
      for (let i = 0; i < 150 && v.state !== 'done'; i++) {
        v = JSON.parse((await get(port, '/api/verify')).body) as typeof v;
        if (v.state !== 'done') await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(v.ok, true, v.summary);
      assert.match(v.summary, /^INTACT: [1-9]\d* records/);
      assert.match(v.summary, /[1-9]\d* of [1-9]\d* checkpoint signatures valid/, 'checked with the checkpoint keys in DIR/decisions');
    } finally {
      ac.abort();
    }
    assert.equal(await done, 0);
  });

  it('--state DIR without a log there says so, naming DIR/decisions', async () => {
    const state = tempDir();
    let err = '';
    const code = await createReviewCommand({ out: () => undefined, err: (s) => { err += s; }, env: { TOLLGATE_STATE_DIR: dirname(await logDir(3)) } }).run(['--state', state, '--port', '0']);
    assert.equal(code, 1);
    assert.ok(err.includes(`no decision log in ${join(state, 'decisions')}:`), err);
  });

  it('exits with a clear message when there is no log', async () => {
    let err = '';
    const code = await createReviewCommand({ out: () => undefined, err: (s) => { err += s; }, env: {} }).run(['--dir', join(tempDir(), 'none')]);
    assert.equal(code, 1);
    assert.match(err, /no decision log in .*none: pass --dir DIR/);
  });
});
