import { strict as assert } from 'node:assert';
import type { DecisionLogStats } from '../../../src/decisionlog/tee.js';
import { createStatusProvider, STATUS_SCHEMA, statusDocSchema, type BudgetsView } from '../../../src/metrics/status.js';
import type { BundleSourceStatus } from '../../../src/policy/sources/types.js';
import { tracingRequested } from '../../../src/telemetry/tracing.js';

const T0 = Date.parse('2025-03-10T15:00:00Z');

function source(over: Partial<BundleSourceStatus> = {}): BundleSourceStatus {
  return { kind: 'nats', revision: null, loadedAt: null, swaps: 0, rejections: 0, lastError: null, sourceError: null, ...over };
}

describe('status provider', () => {
  it('is not ready without a policy or a gRPC server, and says why', () => {
    let policy: BundleSourceStatus | null = null;
    let grpcUp = false;
    const p = createStatusProvider({
      instanceId: 'authz-1', version: '0.1.0', startedAt: new Date(T0), clock: () => T0 + 90_000,
      grpc: () => ({ listen: '127.0.0.1:9191', up: grpcUp }), policy: () => policy,
    });
    let r = p.readiness();
    assert.equal(r.ready, false);
    assert.match(r.reasons[0]!, /policy source is still starting/);
    assert.match(r.reasons[1]!, /gRPC server on 127\.0\.0\.1:9191 is not accepting calls/);

    policy = source({ sourceError: 'NATS nats://127.0.0.1:4222 unreachable: connection refused' });
    grpcUp = true;
    r = p.readiness();
    assert.equal(r.ready, false);
    assert.deepEqual(r.reasons, ['no policy loaded yet, every call is refused (fail closed): NATS nats://127.0.0.1:4222 unreachable: connection refused']);

    policy = source({ revision: '7', loadedAt: new Date(T0 + 1000).toISOString(), swaps: 1 });
    assert.deepEqual(p.readiness(), { ready: true, reasons: [] });
  });

  it('reports revision, last rejection, decision log replication and budgets in one document', () => {
    const rejection = { at: '2025-03-10T15:01:00.000Z', message: 'bundle revision 8 from nats rejected: signature does not verify', revision: '8' };
    const log: DecisionLogStats = {
      file: { dir: '/var/lib/tollgate/decisions', file: 'decisions-3.jsonl', seq: 120, records: 100, checkpoints: 2, rotations: 0, writeErrors: 0 },
      replicas: [{ connected: true, healthy: true, published: 100, duplicates: 0, failures: 0, queued: 0, spooledBytes: 0, deferred: 0, dropped: 0, catchingUpFrom: null, ackedSeq: 118, lastError: null }],
    };
    const budgets: BudgetsView = {
      mode: 'local',
      budgets: [{ name: 'payments-daily', limit: 300_000, window: 'day', action: 'deny' }, { name: 'all-monthly', limit: 9_000_000, window: 'month', action: 'warn' }],
      metrics: { chargedTokens: new Map([['payments-daily', 1234]]), denials: new Map() },
      remaining: () => new Map([['payments-daily', 250_000]]),
    };
    const p = createStatusProvider({
      instanceId: 'authz-1', version: '0.1.0', startedAt: new Date(T0), clock: () => T0 + 3_600_000,
      grpc: () => ({ listen: '127.0.0.1:9191', up: true }),
      policy: () => source({ revision: '7', loadedAt: '2025-03-10T15:00:30.000Z', swaps: 2, rejections: 1, lastError: rejection }),
      decisionLog: () => log,
      budgets: () => budgets,
    });
    const doc = p.status();
    assert.equal(doc.schema, STATUS_SCHEMA);
    assert.equal(doc.ready, true);
    assert.equal(doc.uptimeSeconds, 3600);
    assert.equal(doc.startedAt, '2025-03-10T15:00:00.000Z');
    assert.deepEqual(doc.policy, { source: 'nats', revision: '7', loadedAt: '2025-03-10T15:00:30.000Z', swaps: 2, rejections: 1, lastRejection: rejection, sourceError: null });
    assert.equal(doc.decisionLog?.records, 100);
    assert.equal(doc.decisionLog?.replication?.pending, 2);
    assert.deepEqual(doc.budgets, {
      mode: 'local',
      budgets: [
        { name: 'payments-daily', window: 'day', action: 'deny', limit: 300_000, remaining: 250_000, chargedTokens: 1234, denials: 0 },
        { name: 'all-monthly', window: 'month', action: 'warn', limit: 9_000_000, remaining: null, chargedTokens: 0, denials: 0 },
      ],
    });
    // It is served as JSON: it must survive the round trip unchanged.
    assert.deepEqual(JSON.parse(JSON.stringify(doc)), doc);
    // ... and `tollgate status` checks what it receives with the schema it is built to.
    assert.deepEqual(statusDocSchema.parse(JSON.parse(JSON.stringify(doc))), doc);
    const starting = createStatusProvider({ instanceId: 'a', version: 'v', grpc: () => ({ listen: null, up: false }), policy: () => null }).status();
    assert.deepEqual(statusDocSchema.parse(JSON.parse(JSON.stringify(starting))), starting);
  });
});

describe('tracingRequested', () => {
  it('is off unless an OTLP endpoint or a traces exporter is named', () => {
    assert.equal(tracingRequested({}).on, false);
    assert.equal(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }).on, true);
    assert.equal(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' }).on, true);
    assert.equal(tracingRequested({ OTEL_TRACES_EXPORTER: 'console' }).on, true);
    assert.equal(tracingRequested({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }).on, false);
    assert.equal(tracingRequested({ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp' }).on, false);
  });
});
