import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import type { ChainedDecisionRecord } from '../../../src/decisionlog/types.js';
import { unfoldRecord } from '../../../src/decisionlog/fold.js';
import { connectClient } from '../../support/mcp-client.js';
import { authzStatus, eventually, keepPublicKey, logEntries, logRecords, RawSession, startMesh, tollgateLogs, type TestMesh } from './support.js';

interface Caller { sub: string; team: string; groups?: string[]; agent?: string }

const DORA: Caller = { sub: 'dora', team: 'payments', groups: ['dba'], agent: 'cleanup-bot' };
const ERIN: Caller = { sub: 'erin', team: 'platform', groups: ['dba'] };
const SAM: Caller = { sub: 'sam', team: 'support' };
const ALICE: Caller = { sub: 'alice', team: 'payments' };

const PASTED_KEY = 'sk-live7Qx2mN8pR4vT6yW1zB3cD5fG9hJ0kL';
const API_KEY = 'b9f1c2d3e4a5-API-KEY-do-not-log';

/**
 * Issue 3, "Done when", review: "who called delete_records on this server, under which policy
 * revision, and is the log complete?" answered with the two documented commands, after real
 * calls through Envoy by several identities; and masking checked on what authz actually wrote.
 */
describe('decision log end to end: the security review', function () {
  this.timeout(120_000);
  let t: TestMesh;
  const clients: Client[] = [];
  const tokens: string[] = [];
  /** delete_records calls in the order they were made: who, and whether the policy let it through. */
  const calls: Array<{ who: Caller; allow: boolean }> = [];
  let revision = '';
  let trustedKey = '';

  async function client(who: Caller): Promise<Client> {
    const token = await t.mesh.token({ ...who, extra: { email: `${who.sub}@example.com` } });
    tokens.push(token);
    const c = await connectClient(t.mesh.endpoints.mcp, token);
    clients.push(c);
    return c;
  }

  async function deleteRecords(c: Client, who: Caller, table: string): Promise<void> {
    const allowed = (who.groups ?? []).includes('dba');
    const call = c.callTool({ name: 'delete_records', arguments: { table, where: "created_at < '2020-01-01'" } });
    if (allowed) await call;
    else await assert.rejects(call, (e: unknown) => e instanceof McpError && e.code === -32003);
    calls.push({ who, allow: allowed });
  }

  before(async () => {
    t = await startMesh('dlog-review');
    trustedKey = keepPublicKey(t);
    const dora = await client(DORA);
    const erin = await client(ERIN);
    const sam = await client(SAM);
    const alice = await client(ALICE);
    // Noise the query must leave out: other tools by the same people.
    await alice.callTool({ name: 'search_docs', arguments: { query: 'refund' } });
    await deleteRecords(dora, DORA, 'sessions');
    await deleteRecords(sam, SAM, 'customers');
    await deleteRecords(alice, ALICE, 'invoices');
    await sam.callTool({ name: 'get_customer', arguments: { customer_id: 'cus_1001' } });
    await deleteRecords(erin, ERIN, 'audit_tmp');
    await deleteRecords(dora, DORA, 'carts');
    await deleteRecords(alice, ALICE, 'refunds');
    // Masking: a key pasted into free text (the policy refuses it), and a keyed credential (allowed).
    await assert.rejects(alice.callTool({ name: 'create_ticket', arguments: { title: 'Rotate key', body: `our key ${PASTED_KEY} leaked`, priority: 'high' } }),
      (e: unknown) => e instanceof McpError && e.code === -32003);
    await alice.callTool({ name: 'create_ticket', arguments: { title: 'Webhook', body: 'use the key in api_key', priority: 'low', api_key: API_KEY } });
    revision = (await authzStatus(t.mesh)).policy.revision ?? '';
    assert.match(revision, /^local-[0-9a-f]{12}$/);
  });

  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await t?.dispose();
  });

  // The documented commands rely on the default log location: $TOLLGATE_STATE_DIR/decisions.
  const env = (): NodeJS.ProcessEnv => ({ TOLLGATE_STATE_DIR: t.state });

  it('`tollgate logs query --tool delete_records --server demo --since 24h` shows who, the decision, the policy revision and the reasons, in full', async () => {
    const q = await tollgateLogs(['query', '--tool', 'delete_records', '--server', 'demo', '--since', '24h'], env());
    assert.equal(q.code, 0, q.err);
    const [header, ...rows] = q.out.trimEnd().split('\n').map((l) => l.split(/ {2,}/));
    assert.deepEqual(header, ['TIME', 'DECISION', 'SUB', 'TEAM', 'AGENT', 'GROUPS', 'SERVER', 'TOOL', 'ARGS', 'REVISION', 'REASONS']);
    assert.equal(rows.length, calls.length, q.out);
    const records = logRecords(t.logDir).filter((r) => r.mcp.tool === 'delete_records');
    rows.forEach((row, i) => {
      const { who, allow } = calls[i]!;
      const [time, decision, sub, team, agent, , server, tool, args, rev, reasons] = row;
      assert.ok(Date.now() - Date.parse(time!) < 24 * 3600_000, `a time within the last day: ${time}`);
      assert.deepEqual([decision, sub, team, agent, server, tool, rev], [allow ? 'allow' : 'deny', who.sub, who.team, who.agent ?? '-', 'demo', 'delete_records', revision], q.out);
      assert.ok(args, 'an ARGS cell (the masked arguments, or - when the record has none)');
      // The whole reason, as the caller got it: a reviewer must not have to guess the end of it.
      assert.equal(reasons, allow ? '-' : records[i]!.result.reasons.join('; '));
      if (!allow) assert.match(reasons!, /^Tool delete_records is destructive .*needs membership of group dba\. Ask a member of dba to run it, or request membership\.$/);
    });
    console.log(q.out.replace(/^/gm, '      '));
  });

  it('... and with --json gives each full record: identity, reasons, revision, masked input', async () => {
    const q = await tollgateLogs(['query', '--tool', 'delete_records', '--server', 'demo', '--since', '24h', '--json'], env());
    assert.equal(q.code, 0, q.err);
    const recs = q.out.trimEnd().split('\n').map((l) => JSON.parse(l) as ChainedDecisionRecord);
    assert.equal(recs.length, calls.length);
    recs.forEach((r, i) => {
      const { who, allow } = calls[i]!;
      assert.equal(r.identity.sub, who.sub);
      assert.equal(r.identity.team, who.team);
      assert.equal(r.identity.agent, who.agent ?? null);
      assert.equal(r.identity.iss, t.mesh.endpoints.issuer);
      assert.equal(r.result.allow, allow);
      assert.equal(r.result.http_status, 200, 'denials go back as JSON-RPC errors with HTTP 200');
      assert.equal(r.result.code, allow ? null : -32003);
      assert.equal(r.result.reasons.length === 0, allow);
      assert.deepEqual(r.bundles, { tollgate: { revision } });
      assert.equal(r.mcp.method, 'tools/call');
      assert.match(r.mcp.session_id ?? '', /^[0-9a-f-]{36}$/);
      assert.equal(r.input?.mcp.arguments?.where, "created_at < '2020-01-01'", 'arguments that are not secret stay readable');
      // The policy's data.system.log.mask erases personal claims (OPA semantics: listed in `erased`).
      assert.ok(r.erased.includes('/input/identity/claims/email'), JSON.stringify(r.erased));
      assert.equal((r.input?.identity.claims as Record<string, unknown>).email, undefined);
    });
    // The same answer for "yesterday" as seen the day after (the clock of the command is injected).
    const tomorrow = new Date(Date.now() + 24 * 3600_000);
    const y = await tollgateLogs(['query', '--tool', 'delete_records', '--server', 'demo', '--since', 'yesterday', '--until', 'today', '--json'], env(), tomorrow);
    const yesterday = new Date(tomorrow.getTime() - 24 * 3600_000).toISOString().slice(0, 10);
    const expected = recs.filter((r) => r.timestamp.startsWith(yesterday)).map((r) => r.decision_id);
    assert.deepEqual(y.out.trimEnd().split('\n').filter(Boolean).map((l) => (JSON.parse(l) as ChainedDecisionRecord).decision_id), expected);
  });

  it('`tollgate logs verify <dir>` proves the log complete', async () => {
    // A live log is signed by the periodic checkpoint (every 10 s while records are unsigned);
    // wait for it, as a reviewer looking at yesterday's log would find it signed.
    // (A checkpoint may also have landed part-way through the calls on a slow machine: wait for
    // one that covers the last record, not just for any. The chain holds the decisions and the
    // accounting records written once each allowed response was counted.)
    const records = await eventually(async () => {
      const chain = logEntries(t.logDir);
      const s = await authzStatus(t.mesh);
      if (!s.decisionLog || s.decisionLog.seq !== chain.length) return null;
      const probe = await tollgateLogs(['verify', t.logDir], env());
      return probe.out.includes(`signed through seq ${chain.length}\n`) ? chain : null;
    }, 'the periodic checkpoint over the last record', 30_000);
    const v = await tollgateLogs(['verify', t.logDir], env());
    assert.equal(v.code, 0, v.out);
    assert.match(v.out, new RegExp(`${records.length} records \\(seq 1\\.\\.${records.length}\\)`));
    assert.match(v.out, new RegExp(`INTACT: the chain is unbroken and signed through seq ${records.length}`));
    console.log(v.out.replace(/^/gm, '      '));
    // With the public key kept apart from the log, nothing is left to warn about, even with --strict.
    const strict = await tollgateLogs(['verify', t.logDir, '--key', trustedKey, '--strict'], env());
    assert.equal(strict.code, 0, strict.out);
    assert.doesNotMatch(strict.out, /warning/);
  });

  it('masks secrets in arguments end to end, and no caller token reaches the log files', async () => {
    const records = logRecords(t.logDir);
    const tickets = records.filter((r) => r.mcp.tool === 'create_ticket');
    assert.equal(tickets.length, 2);
    const [pasted, keyed] = tickets as [ChainedDecisionRecord, ChainedDecisionRecord];

    assert.equal(pasted.result.allow, false);
    assert.match(pasted.result.reasons.join(' '), /looks like an API key/);
    for (const p of ['/input/mcp/arguments/body', '/input/mcp/params/arguments/body', '/input/parsed_body/params/arguments/body']) {
      assert.ok(pasted.masked.includes(p), `${p} masked: ${JSON.stringify(pasted.masked)}`);
    }
    assert.equal(pasted.input?.mcp.arguments?.body, '***');
    assert.equal(pasted.input?.mcp.arguments?.title, 'Rotate key');

    assert.equal(keyed.result.allow, true);
    assert.ok(keyed.masked.includes('/input/mcp/arguments/api_key'), JSON.stringify(keyed.masked));
    assert.equal(keyed.input?.mcp.arguments?.api_key, '***');
    assert.equal(keyed.input?.mcp.arguments?.body, 'use the key in api_key');

    for (const written of records) {
      // Both copies of the headers as authz had them (a record may write the second as a fold of the first).
      const r = unfoldRecord(written);
      const headers = r.input ? [r.input.request.headers, (r.input.attributes as { request: { http: { headers: Record<string, string> } } }).request.http.headers] : [];
      for (const h of headers) assert.equal(h.authorization, undefined, `seq ${r.seq}: no authorization header in the input`);
    }
    // Grep the raw files, not parsed records: a secret anywhere in a line would be a leak.
    const files = readdirSync(t.logDir).map((f) => join(t.logDir, f));
    const raw = files.map((f) => readFileSync(f, 'utf8')).join('\n');
    assert.ok(raw.length > 0);
    assert.ok(!raw.includes(PASTED_KEY), 'the pasted key is not in the log');
    assert.ok(!raw.includes(API_KEY), 'the api_key value is not in the log');
    for (const token of tokens) {
      assert.ok(!raw.includes(token), 'a bearer token is in the log');
      assert.ok(!raw.includes(token.split('.')[2]!), 'a bearer token signature is in the log');
    }
    for (const who of [DORA, ERIN, SAM, ALICE]) assert.ok(!raw.includes(`${who.sub}@example.com`), 'personal claims are erased');
    console.log(`      ${records.length} records in ${files.length} files checked: no token (${tokens.length} callers), no pasted or keyed secret, no e-mail`);
  });
  it('a caller-chosen tool name cannot hide or disguise its row: control and bidi characters are shown escaped', async () => {
    const token = await t.mesh.token({ sub: 'mallory', team: 'growth' });
    tokens.push(token);
    const s = await RawSession.open(t.mesh.endpoints.mcp, token, 'mallory');
    // ESC [1A ESC [2K: "cursor up, erase line" would wipe the row above from the reviewer's
    // terminal; U+202E (right-to-left override) would make the name read differently.
    const names = ['delete_records\u001b[1A\u001b[2K', '\u202esdrocer_eteled', 'drop\u0007\u009b31m'];
    for (const [i, name] of names.entries()) {
      const o = await s.call(`hostile-${i}`, name, { table: 'invoices', where: 'true' });
      assert.equal(o.kind, 'denied', JSON.stringify(o));
    }
    // eslint-disable-next-line no-control-regex -- finding control characters is the test
    const risky = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/;
    const q = await tollgateLogs(['query', '--sub', 'mallory', '--method', 'tools/call'], env());
    assert.equal(q.code, 0, q.err);
    assert.ok(!risky.test(q.out), `raw control characters reach the terminal: ${JSON.stringify(q.out)}`);
    const rows = q.out.trimEnd().split('\n').slice(1);
    assert.equal(rows.length, names.length);
    assert.match(rows[0]!, /delete_records\\u001b\[1A\\u001b\[2K/);
    assert.match(rows[1]!, /\\u202esdrocer_eteled/);
    // --json too: the same values (any JSON parser reads \uXXXX back), nothing raw on screen.
    const j = await tollgateLogs(['query', '--sub', 'mallory', '--method', 'tools/call', '--json'], env());
    assert.ok(!risky.test(j.out), `raw control characters in --json: ${JSON.stringify(j.out)}`);
    assert.deepEqual(j.out.trimEnd().split('\n').map((l) => (JSON.parse(l) as ChainedDecisionRecord).mcp.tool), names);
    const stats = await tollgateLogs(['stats', '--sub', 'mallory'], env());
    assert.ok(!risky.test(stats.out), `raw control characters in stats: ${JSON.stringify(stats.out)}`);
    const tail = await tollgateLogs(['tail', '-n', '3'], env());
    assert.ok(!risky.test(tail.out), `raw control characters in tail: ${JSON.stringify(tail.out)}`);
    // The record itself keeps the name exactly as sent (JSON escapes it): evidence is not rewritten.
    const recorded = logRecords(t.logDir).filter((r) => r.identity.sub === 'mallory' && r.mcp.method === 'tools/call').map((r) => r.mcp.tool);
    assert.deepEqual(recorded, names);
  });
});
