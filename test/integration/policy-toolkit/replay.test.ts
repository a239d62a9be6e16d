import { strict as assert } from 'node:assert';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Authorizer } from '../../../src/authz/check.js';
import { createDecisionSink } from '../../../src/decisionlog/config.js';
import { FileDecisionSink } from '../../../src/decisionlog/file-sink.js';
import { NatsReplica } from '../../../src/decisionlog/nats-sink.js';
import type { DecisionSink } from '../../../src/decisionlog/types.js';
import { NatsServer } from '../../../src/nats/server.js';
import { createInputMasker } from '../../../src/decisionlog/mask.js';
import { AuthError, type Identity, type TokenVerifier } from '../../../src/identity/types.js';
import { loadPolicyFromDir } from '../../../src/policy/engine.js';
import { PolicyHolder } from '../../../src/policy/holder.js';
import { identityFromSpec, jsonRpcBody, requestView } from '../../../src/toolkit/call-input.js';
import type { IdentitySpec, RequestSpec } from '../../../src/toolkit/scenario-types.js';
import { cleanup, copyOfPolicies, policy, REPO_POLICIES, scratch } from './support.js';

/** When the recorded calls were decided (a Friday), as the Authorizer's clock says. */
const RECORDED_AT = Date.parse('2026-11-20T03:30:00Z');

const PEOPLE: Record<string, IdentitySpec> = {
  alice: { sub: 'alice', team: 'payments' },
  bob: { sub: 'bob', team: 'payments' },
  carol: { sub: 'carol', team: 'support' },
  dora: { sub: 'dora', team: 'support', groups: ['dba'] },
};

function fileSink(logDir: string): DecisionSink {
  return FileDecisionSink.open({
    dir: logDir, maxFileBytes: 1 << 20, checkpointEvery: 4, checkpointIntervalMs: 0, signingKeyPath: join(logDir, '..', 'log-key.pem'), fsync: 'never', warn: () => undefined,
  });
}

/** A caller through the production Authorizer with the example policy, writing a real decision log. */
async function recorder(sink: DecisionSink): Promise<(who: string, request: RequestSpec) => Promise<boolean>> {
  const old = await loadPolicyFromDir(REPO_POLICIES);
  const holder = new PolicyHolder();
  holder.swap(old);
  const now = BigInt(Date.now()) * 1_000_000n;
  const verifier: TokenVerifier = {
    async verify(token) {
      const who = PEOPLE[token.replace(/^tok-/, '')];
      if (!who) throw new AuthError('bad_signature', 'signature does not verify');
      return identityFromSpec(who, now) as Identity;
    },
  };
  const authz = new Authorizer({
    settings: {
      instanceId: 'authz-replay-test', version: '0.1.0', defaultScope: { server: 'demo', namespace: 'default' }, resourceMetadataUrl: 'http://127.0.0.1:10000/m',
      limits: { maxBytes: 1 << 20, maxDepth: 64, maxBatch: 64 }, denyStatus: 200, upstreamAuthorization: null,
    },
    verifier, policy: holder, budget: null, sink, pending: null, annotations: null, countTokens: null,
    mask: createInputMasker(), policyMask: (input) => old.evaluateMask(input), clock: () => RECORDED_AT,
  });
  const call = async (who: string, request: RequestSpec): Promise<boolean> => {
    const body = jsonRpcBody(request)!;
    const spec = { server: 'demo', namespace: 'default', identity: {}, request: { ...request, headers: { authorization: `Bearer tok-${who}` } }, budget: null, annotations: null, nowNs: now, mode: 'tollgate' as const };
    return (await authz.check(requestView(spec, Buffer.from(JSON.stringify(body))))).allow;
  };
  return call;
}

/** Runs calls through the production Authorizer with the example policy, writing a real decision log. */
async function recordTraffic(sink: DecisionSink): Promise<void> {
  const call = await recorder(sink);
  const sql = { tool: 'run_sql', arguments: { query: 'SELECT id FROM orders WHERE id = 7' } };
  assert.equal(await call('alice', sql), true);
  assert.equal(await call('bob', sql), true);
  assert.equal(await call('carol', sql), false);
  assert.equal(await call('alice', { tool: 'search_docs', arguments: { query: 'refunds' } }), true);
  // Masked in the log: a credential-named argument (the decision's mask) and personal data (log_mask.rego).
  assert.equal(await call('alice', { tool: 'search_docs', arguments: { query: 'refunds', api_key: 'k-123' } }), true);
  assert.equal(await call('bob', { tool: 'search_docs', arguments: { query: 'mail ada@example.com' } }), true);
  assert.equal(await call('mallory', { tool: 'search_docs', arguments: { query: 'x' } }), false);
  assert.equal(await call('carol', { tool: 'create_ticket', arguments: { title: 'Refund stuck', priority: 'high' } }), true);
  assert.equal(await call('dora', { tool: 'delete_records', arguments: { table: 'refunds', where: 'id = 9' } }), true);
}

interface Config {
  teams: Record<string, { classes: string[] }>;
  change_window?: unknown;
}

function policyWith(edit: (c: Config) => void): string {
  const dir = copyOfPolicies();
  const path = join(dir, 'data.json');
  const data = JSON.parse(readFileSync(path, 'utf8')) as { tollgate: { config: Config } };
  edit(data.tollgate.config);
  writeFileSync(path, JSON.stringify(data, null, 2));
  return dir;
}

/** The edit under review: payments lose run_sql (query tools), support gains it. */
function editedPolicy(): string {
  return policyWith((c) => {
    c.teams.payments!.classes = ['read', 'write'];
    c.teams.support!.classes = ['read', 'query'];
  });
}

describe('tollgate policy replay', function () {
  this.timeout(120_000);
  let logDir: string;
  let newPolicies: string;

  before(async () => {
    logDir = join(scratch(), 'decisions');
    const sink = fileSink(logDir);
    await recordTraffic(sink);
    await sink.close();
    newPolicies = editedPolicy();
  });
  after(cleanup);

  it('reports newly denied and newly allowed calls by tool, team and reason, with decision ids', async () => {
    const r = await policy(['replay', '--logs', logDir, '--policies', newPolicies]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^Replayed 8 of 9 recorded decisions/m);
    assert.match(r.out, /^ {2}newly denied +2$/m);
    assert.match(r.out, /^ {2}newly allowed +1$/m);
    assert.match(r.out, /^ {2}unchanged +3$/m);
    assert.match(r.out, /^ {2}uncertain +2 {3}\(masked fields the new policy may read; not counted above\)$/m);
    assert.match(r.out, /^ {2}skipped +1 /m);
    const denied = r.out.slice(r.out.indexOf('Newly denied (2):'), r.out.indexOf('Newly allowed (1):'));
    assert.match(denied, /by tool:\n\s+2 {2}demo\/run_sql\s+e\.g\. [0-9a-f-]{36}, [0-9a-f-]{36}/);
    assert.match(denied, /by team:\n\s+2 {2}payments/);
    assert.match(denied, /by new reason:\n\s+2 {2}Team payments may not use tool run_sql/);
    const allowed = r.out.slice(r.out.indexOf('Newly allowed (1):'));
    assert.match(allowed, /by team:\n\s+1 {2}support/);
    assert.match(allowed, /by reason they were denied:\n\s+1 {2}Team support may not use tool run_sql/);
    assert.match(r.out, /uncertain: depends on masked field \/input\/mcp\/arguments\/api_key \(still allowed on the masked input\)/);
    assert.match(r.out, /uncertain: depends on masked field \/input\/mcp\/arguments\/query/);
    assert.match(r.out, /Skipped \(1\):\n {2}by reason:\n\s+1 {2}refused before policy: missing or invalid token/);
    assert.match(r.out, /The new policy may read: input\.identity, input\.mcp, input\.request\.method, input\.budget\.budgets/);
  });

  it('gives JSON, filters by time and tool, and fails on change when asked', async () => {
    const j = await policy(['replay', '--logs', logDir, '--policies', newPolicies, '--json']);
    const doc = JSON.parse(j.out) as { newlyDenied: { count: number; byTeam: Array<{ key: string; examples: string[] }> }; newlyAllowed: { count: number }; uncertain: { count: number; byField: Array<{ key: string }> }; skipped: { count: number } };
    assert.deepEqual([doc.newlyDenied.count, doc.newlyAllowed.count, doc.uncertain.count, doc.skipped.count], [2, 1, 2, 1]);
    assert.deepEqual(doc.uncertain.byField.map((f) => f.key).sort(), ['/input/mcp/arguments/api_key', '/input/mcp/arguments/query']);
    // The example ids are real decision ids of the log.
    const id = doc.newlyDenied.byTeam[0]!.examples[0]!;
    assert.ok(readFileSync(join(logDir, 'decisions-000001.jsonl'), 'utf8').includes(`"decision_id":"${id}"`));

    const fail = await policy(['replay', '--logs', logDir, '--policies', newPolicies, '--fail-on-change', '--tool', 'run_sql']);
    assert.equal(fail.code, 1);
    assert.match(fail.out, /^Replayed 3 of 3 recorded decisions/m);
    const later = await policy(['replay', '--logs', logDir, '--policies', newPolicies, '--since', '2026-11-21']);
    assert.match(later.out, /^Replayed 0 of 0 recorded decisions/m);
  });

  it('changes nothing when replayed under the policy that made the decisions', async () => {
    const r = await policy(['replay', '--logs', join(logDir, 'decisions-000001.jsonl'), '--policies', REPO_POLICIES, '--fail-on-change']);
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /^ {2}unchanged +8 {3}\(8 decided by this same revision\)$/m);
    assert.match(r.out, /^ {2}uncertain +0$/m);
  });

  it('replays records that fold their copies (bodies of 4 KiB or more) to the decisions they record', async () => {
    const dir = join(scratch(), 'folded');
    const sink = fileSink(dir);
    const call = await recorder(sink);
    const long = 'refund window for enterprise plans paid by card '.repeat(100);
    // Whatever the policy decides (the catalogue limits argument length), replay must decide it again.
    await call('alice', { tool: 'search_docs', arguments: { query: long } });
    await call('carol', { tool: 'run_sql', arguments: { query: `SELECT id FROM orders WHERE note = '${long}'` } });
    await sink.close();
    const text = readFileSync(join(dir, 'decisions-000001.jsonl'), 'utf8');
    assert.equal((text.match(/"folded":\[/g) ?? []).length, 2, 'both records are written folded');
    const r = await policy(['replay', '--logs', join(dir, 'decisions-000001.jsonl'), '--policies', REPO_POLICIES, '--fail-on-change']);
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /^ {2}unchanged +2 {3}\(2 decided by this same revision\)$/m);
  });

  it('judges each record as of the time it was decided', async () => {
    // dora's delete ran on Friday 03:30 UTC: inside a Friday 03-04 change window, outside 05-06,
    // whatever the wall clock says while the test runs.
    const inside = await policy(['replay', '--logs', logDir, '--policies', policyWith((c) => { c.change_window = { days: ['Friday'], from_hour: 3, to_hour: 4, tz: 'UTC' }; }), '--json']);
    const a = JSON.parse(inside.out) as { newlyDenied: { count: number }; unchanged: number };
    assert.deepEqual([a.newlyDenied.count, a.unchanged], [0, 6]);
    const outside = await policy(['replay', '--logs', logDir, '--policies', policyWith((c) => { c.change_window = { days: ['Friday'], from_hour: 5, to_hour: 6, tz: 'UTC' }; }), '--json']);
    const b = JSON.parse(outside.out) as { newlyDenied: { count: number; byTool: Array<{ key: string }>; byReason: Array<{ key: string }> } };
    assert.equal(b.newlyDenied.count, 1);
    assert.equal(b.newlyDenied.byTool[0]!.key, 'demo/delete_records');
    assert.match(b.newlyDenied.byReason[0]!.key, /only run during the change window \(Friday 05:00-06:00 UTC\)/);
  });

  it('says clearly when there is no log', async () => {
    const r = await policy(['replay', '--logs', join(scratch(), 'nothing'), '--policies', newPolicies]);
    assert.equal(r.code, 1);
    assert.match(r.err, /no decision log at .*nothing/);
  });

  it('replays the other records when one has a field of the wrong type, and names it on stderr; a file of garbage is no log', async () => {
    const copy = join(scratch(), 'decisions');
    mkdirSync(copy);
    const file = 'decisions-000001.jsonl';
    const lines = readFileSync(join(logDir, file), 'utf8').split('\n');
    const i = lines.findIndex((l) => l.includes('"seq":2,'));
    const rec = JSON.parse(lines[i]!) as Record<string, unknown>;
    lines[i] = JSON.stringify({ ...rec, identity: null });
    writeFileSync(join(copy, file), lines.join('\n'));
    const r = await policy(['replay', '--logs', copy, '--policies', newPolicies, '--json']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, new RegExp(`^tollgate policy replay: skipped 1 malformed record \\(${file}:${i + 1}: identity: expected an object\\); they were not replayed`));
    const report = JSON.parse(r.out) as { total: number };
    assert.equal(report.total, 8, 'the 8 other decisions are replayed');

    const junk = join(scratch(), 'decisions-000001.jsonl');
    writeFileSync(junk, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x0a, 0x00, 0x0a]));
    const bad = await policy(['replay', '--logs', junk, '--policies', newPolicies]);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /holds no decision log: none of its 2 line\(s\) is a decision record, checkpoint or file head \(decisions-000001\.jsonl:1: not valid JSON/);
    assert.doesNotMatch(bad.out, /Replayed 0 of 0/);
  });
});

describe('tollgate policy replay from the central JetStream stream', function () {
  this.timeout(120_000);
  let nats: NatsServer;
  before(async () => { nats = await NatsServer.start(); });
  after(async () => {
    await nats.dispose();
    cleanup();
  });

  it('reads the records authz replicated to NATS and reports the same changes', async () => {
    const base = scratch();
    const sink = await createDecisionSink({ dir: join(base, 'decisions'), nats: { url: nats.url, queueDir: join(base, 'spool') } }, { warn: () => undefined });
    await recordTraffic(sink);
    const replica = sink.replicas[0] as NatsReplica;
    assert.equal(replica?.constructor.name, NatsReplica.name); // by name: the sink imports it on demand
    await replica.drained();
    await sink.close();
    assert.match(nats.url, /^nats:\/\//);
    const r = await policy(['replay', '--logs', nats.url, '--policies', editedPolicy(), '--json']);
    assert.equal(r.code, 0, r.err);
    const doc = JSON.parse(r.out) as { total: number; newlyDenied: { count: number }; newlyAllowed: { count: number }; uncertain: { count: number }; skipped: { count: number } };
    assert.deepEqual([doc.total, doc.newlyDenied.count, doc.newlyAllowed.count, doc.uncertain.count, doc.skipped.count], [9, 2, 1, 2, 1]);
  });
});
