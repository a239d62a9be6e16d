import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLogsCommand } from '../../../src/cli/logs.js';
import type { OcsfApiActivity } from '../../../src/siem/ocsf.js';
import type { OtlpLogsRequest } from '../../../src/siem/otlp-logs.js';
import { freePort } from '../../../src/util/net.js';
import { sampleDraft, type SampleOptions } from '../../unit/decisionlog/fixtures.js';
import { cleanupTempDirs, openSink, tempDir } from '../../unit/decisionlog/helpers.js';
import { OtelCollector, attrOf } from '../../support/otel-collector.js';

const NOW = new Date('2025-03-10T15:30:00Z');

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const cmd = createLogsCommand({ out: (s) => { out += s; }, err: (s) => { err += s; }, env: {}, now: () => NOW });
  const code = await cmd.run(argv);
  return { code, out, err };
}

const ROWS: SampleOptions[] = [
  { timestamp: '2025-03-09T09:15:00.000Z', sub: 'bob', team: 'billing-ops', server: 'billing', tool: 'delete_records', allow: true, revision: 'rev-7', withInput: true },
  { timestamp: '2025-03-09T11:00:00.000Z', sub: 'eve', team: 'growth', server: 'billing', tool: 'delete_records', allow: false, reasons: ['delete_records requires team billing-ops'], revision: 'rev-7' },
  { timestamp: '2025-03-09T12:00:00.000Z', sub: 'alice', team: 'payments', server: 'billing', tool: 'get_invoice', allow: true, revision: 'rev-7' },
  { timestamp: '2025-03-09T13:00:00.000Z', sub: 'eve', team: 'growth', server: 'search', tool: 'delete_records', allow: false, reasons: ['unknown tool'], revision: 'rev-7' },
  { timestamp: '2025-03-10T08:00:00.000Z', sub: 'eve', team: 'growth', server: 'billing', tool: 'delete_records', allow: false, reasons: ['delete_records requires team billing-ops'], revision: 'rev-8' },
];

/** `tollgate logs export`: OCSF events and OTLP log records, the latter into a real OpenTelemetry Collector. */
describe('SIEM export (tollgate logs export)', function () {
  this.timeout(60_000);
  let dir: string;
  let collector: OtelCollector;

  before(async () => {
    dir = join(tempDir(), 'decisions');
    const sink = openSink(dir, { checkpointEvery: 2 });
    ROWS.forEach((o, i) => sink.append(sampleDraft({ ...o, i: i + 1 })));
    await sink.close();
    collector = await OtelCollector.start();
  });

  after(async () => {
    cleanupTempDirs();
    await collector?.stop();
  });

  it('writes OCSF API Activity events (class 6003), with the same filters as logs query', async () => {
    const r = await run(['export', '--format', 'ocsf', '--decision', 'deny', '--dir', dir]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /exported 3 decisions as OCSF API Activity events/);
    const events = r.out.trim().split('\n').map((l) => JSON.parse(l) as OcsfApiActivity);
    assert.equal(events.length, 3);
    const e = events[0]!;
    assert.equal(e.class_uid, 6003);
    assert.equal(e.category_uid, 6);
    assert.equal(e.activity_id, 99);
    assert.equal(e.activity_name, 'tools/call');
    assert.equal(e.type_uid, 600399);
    assert.equal(e.time, Date.parse('2025-03-09T11:00:00.000Z'));
    assert.equal(e.status_id, 2);
    assert.equal(e.status, 'Failure');
    assert.equal(e.severity_id, 3);
    assert.equal(e.actor.user.uid, 'eve');
    assert.deepEqual(e.actor.user.groups, [{ name: 'growth' }]);
    assert.equal(e.api.operation, 'tools/call');
    assert.equal(e.api.service.name, 'billing');
    assert.equal(e.api.response.message, 'delete_records requires team billing-ops');
    assert.deepEqual(e.resources?.map((x) => x.name), ['delete_records']);
    assert.equal(e.metadata.sequence, 2);
    assert.equal(e.metadata.product.name, 'Tollgate');
    assert.ok(e.metadata.labels.includes('policy_revision:rev-7'));
    assert.equal(e.metadata.uid, e.api.request.uid);
    const tools = await run(['export', '--format', 'ocsf', '--server', 'search', '--dir', dir]);
    assert.equal(tools.out.trim().split('\n').length, 1);
    const allowed = JSON.parse((await run(['export', '--format', 'ocsf', '--sub', 'bob', '--dir', dir])).out) as OcsfApiActivity;
    assert.deepEqual([allowed.status, allowed.severity], ['Success', 'Informational']);
  });

  it('sends OTLP log records over HTTP to a real collector, in batches', async () => {
    const r = await run(['export', '--format', 'otlp', '--endpoint', collector.http, '--batch', '2', '--dir', dir]);
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /exported 5 decisions as OTLP log records to http/);
    const logs = await collector.waitFor('5 decision log records', (c) => {
      const got = c.logs().filter((l) => l.eventName === 'tollgate.decision');
      return got.length >= 5 ? got : null;
    });
    assert.equal(logs.length, 5);
    const denied = logs.filter((l) => attrOf(l.attributes, 'tollgate.decision') === 'deny');
    assert.equal(denied.length, 3);
    const first = denied.find((l) => attrOf(l.attributes, 'tollgate.seq') === '2')!;
    assert.equal(first.service, 'tollgate');
    assert.equal(first.severityText, 'WARN');
    assert.equal(first.timeUnixNano, String(Date.parse('2025-03-09T11:00:00.000Z') * 1_000_000));
    assert.equal(attrOf(first.attributes, 'user.id'), 'eve');
    assert.equal(attrOf(first.attributes, 'tollgate.team'), 'growth');
    assert.equal(attrOf(first.attributes, 'mcp.method.name'), 'tools/call');
    assert.equal(attrOf(first.attributes, 'gen_ai.tool.name'), 'delete_records');
    assert.equal(attrOf(first.attributes, 'tollgate.policy_revision'), 'rev-7');
    assert.equal(attrOf(first.attributes, 'tollgate.reasons'), 'delete_records requires team billing-ops');
    // The body is the whole record, structured: decision_id and the chain link survive the trip.
    const body = first.body?.kvlistValue?.values ?? [];
    assert.equal(body.find((kv) => kv.key === 'decision_id')?.value.stringValue, attrOf(first.attributes, 'tollgate.decision_id'));
    assert.ok(body.some((kv) => kv.key === 'prev_hash'));
    const allowed = logs.find((l) => attrOf(l.attributes, 'user.id') === 'bob')!;
    assert.equal(allowed.severityText, 'INFO');
  });

  it('writes OTLP/JSON requests to a file, one per batch', async () => {
    const out = join(tempDir(), 'otlp.jsonl');
    const r = await run(['export', '--format', 'otlp', '--out', out, '--batch', '2', '--team', 'growth', '--dir', dir]);
    assert.equal(r.code, 0, r.err);
    const requests = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as OtlpLogsRequest);
    assert.deepEqual(requests.map((q) => q.resourceLogs[0]!.scopeLogs[0]!.logRecords.length), [2, 1]);
  });

  it('fails clearly: an unreachable endpoint exits 1, bad flags exit 2', async () => {
    const dead = await run(['export', '--format', 'otlp', '--endpoint', `http://127.0.0.1:${await freePort()}`, '--dir', dir]);
    assert.equal(dead.code, 1);
    assert.match(dead.err, /tollgate logs export: .*0 records were sent before this batch of 5/);
    assert.equal((await run(['export', '--format', 'csv', '--dir', dir])).code, 2);
    assert.equal((await run(['export', '--dir', dir])).code, 2);
    assert.equal((await run(['export', '--format', 'ocsf', '--endpoint', collector.http, '--dir', dir])).code, 2);
    const badUrl = await run(['export', '--format', 'otlp', '--endpoint', 'not a url', '--dir', dir]);
    assert.equal(badUrl.code, 2);
    assert.match(badUrl.err, /not a URL/);
  });
});
