import { strict as assert } from 'node:assert';
import { Registry } from 'prom-client';
import { ErrorCode, reasonClassOf } from '../../../src/contract/refusal.js';
import type { BudgetMetrics } from '../../../src/budget/gate.js';
import type { DecisionLogStats } from '../../../src/decisionlog/tee.js';
import type { NatsReplicaStats } from '../../../src/decisionlog/nats-sink.js';
import { createAuthzMetrics, type AuthzMetrics, type AuthzMetricsOptions } from '../../../src/metrics/authz-metrics.js';
import { BoundedLabels } from '../../../src/metrics/bounded.js';
import type { BundleSourceStatus } from '../../../src/policy/sources/types.js';
import { parseExposition, seriesOf, valueOf, type Exposition } from './exposition.js';

const NOW = Date.parse('2025-03-10T15:30:00Z');

function metrics(opts: AuthzMetricsOptions = {}): AuthzMetrics {
  return createAuthzMetrics(new Registry(), { processMetrics: false, clock: () => NOW, ...opts });
}

async function scrape(m: AuthzMetrics): Promise<Exposition> {
  return parseExposition((await m.expose()).body);
}

const dec = (d: string, rc: string, server: string): Record<string, string> => ({ decision: d, reason_class: rc, server });

describe('authz metrics', () => {
  it('counts decisions by outcome, reason class and server, with series for configured servers from the start', async () => {
    const m = metrics({ servers: ['billing'] });
    let expo = await scrape(m);
    assert.equal(valueOf(expo, 'tollgate_decisions_total', dec('allow', 'policy', 'billing')), 0);
    assert.equal(valueOf(expo, 'tollgate_decisions_total', dec('deny', 'budget', 'billing')), 0);
    assert.equal(seriesOf(expo, 'tollgate_decisions_total').length, 6);

    m.recordDecision({ allow: true, reasonClass: 'policy', server: 'billing', durationNs: 80_000, evalNs: 20_000 });
    m.recordDecision({ allow: true, reasonClass: 'budget', server: 'billing', durationNs: 80_000, evalNs: 20_000 });
    m.recordDecision({ allow: false, reasonClass: 'budget', server: 'billing', durationNs: 40_000, evalNs: 0 });
    m.recordDecision({ allow: false, reasonClass: 'auth', server: 'search', durationNs: 30_000, evalNs: 0 });
    m.recordDecision({ allow: false, reasonClass: 'policy', server: 'search', durationNs: 90_000, evalNs: 30_000 });
    m.recordDecision({ allow: false, reasonClass: 'policy', server: 'search', durationNs: 90_000, evalNs: 30_000 });
    expo = await scrape(m);
    // An allow is the policy's verdict whatever class the caller passed.
    assert.equal(valueOf(expo, 'tollgate_decisions_total', dec('allow', 'policy', 'billing')), 2);
    assert.equal(valueOf(expo, 'tollgate_decisions_total', dec('deny', 'budget', 'billing')), 1);
    assert.equal(valueOf(expo, 'tollgate_decisions_total', dec('deny', 'auth', 'search')), 1);
    assert.equal(valueOf(expo, 'tollgate_decisions_total', dec('deny', 'policy', 'search')), 2);
    assert.equal(valueOf(expo, 'tollgate_decisions_total', dec('deny', 'unavailable', 'search')), 0);
    assert.equal(expo.types.get('tollgate_decisions_total'), 'counter');
  });

  it('puts check durations into sub-millisecond buckets and only times evaluations that ran', async () => {
    const m = metrics();
    for (const us of [30, 70, 200, 2_000, 1_000_000]) {
      m.recordDecision({ allow: true, reasonClass: 'policy', server: 's', durationNs: us * 1000, evalNs: us === 200 ? 15_000 : 0 });
    }
    const expo = await scrape(m);
    assert.equal(expo.types.get('tollgate_check_duration_seconds'), 'histogram');
    const le = (v: string): number | undefined => valueOf(expo, 'tollgate_check_duration_seconds_bucket', { le: v });
    assert.equal(le('0.00005'), 1);
    assert.equal(le('0.0001'), 2);
    assert.equal(le('0.00025'), 3);
    assert.equal(le('0.0025'), 4);
    assert.equal(le('0.1'), 4);
    assert.equal(le('+Inf'), 5);
    assert.equal(valueOf(expo, 'tollgate_check_duration_seconds_count'), 5);
    assert.ok(Math.abs(valueOf(expo, 'tollgate_check_duration_seconds_sum')! - 1.002300) < 1e-9);
    assert.equal(valueOf(expo, 'tollgate_policy_eval_duration_seconds_count'), 1);
    assert.equal(valueOf(expo, 'tollgate_policy_eval_duration_seconds_bucket', { le: '0.00001' }), 0);
    assert.equal(valueOf(expo, 'tollgate_policy_eval_duration_seconds_bucket', { le: '0.000025' }), 1);
  });

  it('keeps the histogram readable through prom-client\'s JSON view too', async () => {
    const m = metrics();
    m.recordDecision({ allow: true, reasonClass: 'policy', server: 's', durationNs: 120_000, evalNs: 0 });
    const all = await m.registry.getMetricsAsJSON();
    const h = all.find((x) => x.name === 'tollgate_check_duration_seconds');
    assert.ok(h);
    const count = h.values.find((v) => (v as { metricName?: string }).metricName === 'tollgate_check_duration_seconds_count');
    assert.equal(count?.value, 1);
  });

  it('caps distinct server label values and counts the rest as "other"', async () => {
    const m = metrics({ maxServers: 2 });
    for (const s of ['a', 'b', 'c', 'd', 'other']) m.recordDecision({ allow: true, reasonClass: 'policy', server: s, durationNs: 1, evalNs: 0 });
    const expo = await scrape(m);
    const servers = new Set(seriesOf(expo, 'tollgate_decisions_total').map((x) => x.labels.server));
    assert.deepEqual([...servers].sort(), ['a', 'b', 'other']);
    assert.equal(valueOf(expo, 'tollgate_decisions_total', dec('allow', 'policy', 'other')), 3);
  });

  it('counts auth failures by failure name, known failures at 0 from the start', async () => {
    const m = metrics();
    m.recordAuthFailure('expired');
    m.recordAuthFailure('expired');
    m.recordAuthFailure('wrong_audience');
    const expo = await scrape(m);
    assert.equal(valueOf(expo, 'tollgate_auth_failures_total', { failure: 'expired' }), 2);
    assert.equal(valueOf(expo, 'tollgate_auth_failures_total', { failure: 'wrong_audience' }), 1);
    assert.equal(valueOf(expo, 'tollgate_auth_failures_total', { failure: 'missing_token' }), 0);
  });

  it('reads the policy source at scrape time: revision, last load, swaps, rejections, source health', async () => {
    const m = metrics();
    let expo = await scrape(m);
    assert.equal(seriesOf(expo, 'tollgate_policy_revision_info').length, 0);
    assert.equal(valueOf(expo, 'tollgate_policy_loaded'), 0);

    const status: BundleSourceStatus = {
      kind: 'nats', revision: '41', loadedAt: '2025-03-10T15:00:00.000Z', swaps: 3, rejections: 0, lastError: null, sourceError: null,
    };
    m.readFrom({ policy: () => status });
    expo = await scrape(m);
    assert.equal(valueOf(expo, 'tollgate_policy_revision_info', { revision: '41' }), 1);
    assert.equal(valueOf(expo, 'tollgate_policy_loaded'), 1);
    assert.equal(valueOf(expo, 'tollgate_policy_last_load_timestamp_seconds'), Date.parse('2025-03-10T15:00:00Z') / 1000);
    assert.equal(valueOf(expo, 'tollgate_policy_swaps_total'), 3);
    assert.equal(valueOf(expo, 'tollgate_policy_bundle_rejections_total'), 0);
    assert.equal(valueOf(expo, 'tollgate_policy_last_rejection_timestamp_seconds'), undefined);
    assert.equal(valueOf(expo, 'tollgate_policy_source_up'), 1);

    // A newer bundle is refused: the old revision keeps serving, and only its series remains.
    status.revision = '42';
    status.swaps = 4;
    status.rejections = 1;
    status.lastError = { at: '2025-03-10T15:20:00.000Z', message: 'bundle revision 43 rejected: bad signature', revision: '43' };
    status.sourceError = 'NATS connection lost';
    expo = await scrape(m);
    assert.deepEqual(seriesOf(expo, 'tollgate_policy_revision_info').map((s) => s.labels.revision), ['42']);
    assert.equal(valueOf(expo, 'tollgate_policy_bundle_rejections_total'), 1);
    assert.equal(valueOf(expo, 'tollgate_policy_last_rejection_timestamp_seconds'), Date.parse('2025-03-10T15:20:00Z') / 1000);
    assert.equal(valueOf(expo, 'tollgate_policy_source_up'), 0);
  });

  it('reads decision log stats at scrape time; queue depth is what NATS has not acknowledged', async () => {
    const m = metrics();
    let expo = await scrape(m);
    // No decision log (yet): no series, rather than zeros that read like a healthy log.
    assert.equal(seriesOf(expo, 'tollgate_decision_log_records_total').length, 0);
    assert.equal(seriesOf(expo, 'tollgate_decision_log_replica_healthy').length, 0);

    const replica: NatsReplicaStats = {
      connected: false, healthy: false, published: 900, duplicates: 0, failures: 4, queued: 0, spooledBytes: 12_345,
      deferred: 0, dropped: 2, catchingUpFrom: null, ackedSeq: 950, lastError: 'connection refused',
    };
    const stats: DecisionLogStats = {
      file: { dir: '/d', file: 'decisions-1.jsonl', seq: 1000, records: 990, checkpoints: 3, rotations: 0, writeErrors: 1 },
      replicas: [replica],
    };
    m.readFrom({ decisionLog: () => stats });
    expo = await scrape(m);
    assert.equal(valueOf(expo, 'tollgate_decision_log_records_total'), 990);
    assert.equal(valueOf(expo, 'tollgate_decision_log_write_errors_total'), 1);
    assert.equal(valueOf(expo, 'tollgate_decision_log_queue_depth'), 50);
    assert.equal(valueOf(expo, 'tollgate_decision_log_spool_bytes'), 12_345);
    assert.equal(valueOf(expo, 'tollgate_decision_log_replica_healthy'), 0);
    assert.equal(valueOf(expo, 'tollgate_decision_log_replica_dropped_total'), 2);

    // Local log only: replication series disappear, the log's own stay.
    stats.replicas = [];
    expo = await scrape(m);
    assert.equal(valueOf(expo, 'tollgate_decision_log_records_total'), 990);
    assert.equal(seriesOf(expo, 'tollgate_decision_log_queue_depth').length, 0);
  });

  it('exposes budget charges and denials from the gate, and remaining tokens net of what was charged since the check', async () => {
    let now = NOW;
    const m = createAuthzMetrics(new Registry(), { processMetrics: false, clock: () => now });
    const gate: BudgetMetrics = { chargedTokens: new Map([['payments-daily', 1000]]), denials: new Map([['payments-daily', 2]]) };
    m.readFrom({ budgets: () => gate });
    m.recordBudgetStanding([{ name: 'payments-daily', limit: 10_000, remaining: 4_000, resets_at: '2025-03-11T00:00:00.000Z' }]);
    // The response to that call is charged afterwards (ext_proc), through the gate.
    gate.chargedTokens.set('payments-daily', 1_600);
    let expo = await scrape(m);
    assert.equal(valueOf(expo, 'tollgate_budget_tokens_charged_total', { budget: 'payments-daily' }), 1_600);
    assert.equal(valueOf(expo, 'tollgate_budget_denials_total', { budget: 'payments-daily' }), 2);
    assert.equal(valueOf(expo, 'tollgate_budget_remaining_tokens', { budget: 'payments-daily' }), 3_400);
    assert.equal(valueOf(expo, 'tollgate_budget_limit_tokens', { budget: 'payments-daily' }), 10_000);
    assert.equal(m.budgetRemaining().get('payments-daily'), 3_400);
    // A local store has no lease contention: the series is absent, not a made-up 0.
    assert.equal(seriesOf(expo, 'tollgate_budget_lease_contention_total').length, 0);

    // Past the reset time with no Check since: the new window has not been spent from here.
    now = Date.parse('2025-03-11T00:00:01Z');
    expo = await scrape(m);
    assert.equal(valueOf(expo, 'tollgate_budget_remaining_tokens', { budget: 'payments-daily' }), 10_000);
  });

  it('exposes lease syncs crowded out by other replicas, per budget, live from the shared store', async () => {
    const m = createAuthzMetrics(new Registry(), { processMetrics: false, clock: () => NOW });
    const contention = new Map([['payments-daily', 3]]);
    const gate: BudgetMetrics = { chargedTokens: new Map(), denials: new Map(), leaseContention: contention };
    m.readFrom({ budgets: () => gate });
    assert.equal(valueOf(await scrape(m), 'tollgate_budget_lease_contention_total', { budget: 'payments-daily' }), 3);
    contention.set('payments-daily', 5);
    contention.set('search-daily', 1);
    const expo = await scrape(m);
    assert.equal(valueOf(expo, 'tollgate_budget_lease_contention_total', { budget: 'payments-daily' }), 5);
    assert.equal(valueOf(expo, 'tollgate_budget_lease_contention_total', { budget: 'search-daily' }), 1);
    assert.equal(expo.types.get('tollgate_budget_lease_contention_total'), 'counter');
  });

  it('serves a well-formed exposition with HELP and TYPE for every metric, process metrics included', async () => {
    const m = createAuthzMetrics(new Registry(), { version: '0.1.0', servers: ['default'] });
    m.recordDecision({ allow: false, reasonClass: 'unavailable', server: 'default', durationNs: 1_000_000, evalNs: 0 });
    const { body, contentType } = await m.expose();
    assert.match(contentType, /^text\/plain; version=0\.0\.4/);
    const expo = parseExposition(body);
    for (const name of expo.types.keys()) assert.ok(expo.helps.get(name), `HELP missing for ${name}`);
    assert.equal(valueOf(expo, 'tollgate_build_info', { version: '0.1.0' }), 1);
    assert.ok(expo.types.has('process_cpu_user_seconds_total'));
    assert.ok(expo.types.has('nodejs_eventloop_lag_seconds'));
    for (const name of [
      'tollgate_decisions_total', 'tollgate_check_duration_seconds', 'tollgate_policy_eval_duration_seconds', 'tollgate_auth_failures_total',
      'tollgate_policy_revision_info', 'tollgate_policy_bundle_rejections_total', 'tollgate_policy_last_load_timestamp_seconds',
      'tollgate_budget_tokens_charged_total', 'tollgate_budget_remaining_tokens', 'tollgate_decision_log_records_total',
      'tollgate_decision_log_write_errors_total', 'tollgate_decision_log_queue_depth', 'tollgate_decision_log_tampering_total',
    ]) assert.ok(expo.types.has(name), `${name} is not exposed`);
  });
});

describe('reasonClassOf', () => {
  it('maps every stable error code to the class an operator alerts on', () => {
    assert.equal(reasonClassOf(null), 'policy');
    assert.equal(reasonClassOf(ErrorCode.PolicyDenied), 'policy');
    assert.equal(reasonClassOf(ErrorCode.BatchAborted), 'policy');
    assert.equal(reasonClassOf(ErrorCode.BudgetExhausted), 'budget');
    assert.equal(reasonClassOf(ErrorCode.Unauthenticated), 'auth');
    for (const c of [ErrorCode.ParseError, ErrorCode.InvalidRequest, ErrorCode.InvalidParams, ErrorCode.RequestTooLarge]) assert.equal(reasonClassOf(c), 'bad_request');
    assert.equal(reasonClassOf(ErrorCode.Unavailable), 'unavailable');
    assert.equal(reasonClassOf(-1), 'unavailable');
  });
});

describe('BoundedLabels', () => {
  it('creates once per value, then routes values past the cap to one shared entry', () => {
    let made = 0;
    const b = new BoundedLabels(2, (v) => ({ v, n: made++ }));
    assert.equal(b.get('x'), b.get('x'));
    b.get('y');
    assert.equal(b.get('z').v, 'other');
    assert.equal(b.get('z'), b.get('w'));
    assert.equal(made, 3);
    assert.deepEqual([...b.values()].map((e) => e.v), ['x', 'y', 'other']);
  });
});

describe('ext_proc counters', () => {
  it('are absent until authz has a response path, then read its stats at scrape time', async () => {
    const m = createAuthzMetrics(new Registry(), { processMetrics: false });
    assert.doesNotMatch((await m.expose()).body, /^tollgate_extproc_responses_total \d/m);
    const stats = { streams: 3, responses: 2, unknownDecision: 1, unfilterable: 1, errors: 0, chargedTokens: 120, filteredItems: 4, oversizeBodies: 0 };
    m.readFrom({ extProc: () => stats });
    stats.responses = 5;
    const body = (await m.expose()).body;
    assert.match(body, /^tollgate_extproc_responses_total 5$/m);
    assert.match(body, /^tollgate_extproc_unfilterable_total 1$/m);
    assert.match(body, /^tollgate_extproc_filtered_items_total 4$/m);
    assert.match(body, /^tollgate_extproc_charged_tokens_total 120$/m);
  });
});
