import { strict as assert } from 'node:assert';
import { encodeDefinitions, mergeDefinitions, parseDefinitions } from '../../../src/budget/definitions.js';
import type { BudgetSpec } from '../../../src/budget/config.js';
import { budgetNameOf, definitionOf } from '../../../src/operator/budgets.js';
import { sameConditions, setCondition } from '../../../src/operator/conditions.js';
import { leaseVerdict } from '../../../src/operator/leader.js';
import { WorkQueue } from '../../../src/operator/queue.js';
import { childrenFor } from '../../../src/operator/server-objects.js';
import type { McpServer, TokenBudget } from '../../../src/operator/types.js';

const spec = (name: string, limit = 10): BudgetSpec => ({ name, scope: { team: 't' }, limit, window: 'day', timezone: 'UTC', action: 'deny', tokenizer: 'o200k_base' });

describe('operator: pure parts', () => {
  it('conditions keep lastTransitionTime while the status stays, and compare regardless of field order', () => {
    const t1 = new Date('2026-01-01T00:00:00Z');
    const t2 = new Date('2026-01-01T00:01:00Z');
    const a = setCondition([], { type: 'Ready', status: 'True', reason: 'R', message: 'm' }, t1);
    const b = setCondition(a, { type: 'Ready', status: 'True', reason: 'R2', message: 'm2' }, t2);
    assert.equal(b[0]!.lastTransitionTime, t1.toISOString());
    const c = setCondition(b, { type: 'Ready', status: 'False', reason: 'R3', message: 'm3' }, t2);
    assert.equal(c[0]!.lastTransitionTime, t2.toISOString());
    const reordered = a.map((x) => ({ message: x.message, type: x.type, reason: x.reason, status: x.status, lastTransitionTime: 'other' }));
    assert.ok(sameConditions(a, reordered));
  });

  it('lease verdicts: free or expired -> acquire, ours -> renew, someone else\'s fresh one -> wait', () => {
    const now = Date.parse('2026-01-01T00:00:20Z');
    const lease = (holder: string | undefined, renew: string) => ({ spec: { holderIdentity: holder, renewTime: renew as never, leaseDurationSeconds: 15 } });
    assert.equal(leaseVerdict(null, 'a', now), 'acquire');
    assert.equal(leaseVerdict(lease(undefined, '2026-01-01T00:00:19Z'), 'a', now), 'acquire');
    assert.equal(leaseVerdict(lease('a', '2026-01-01T00:00:19Z'), 'a', now), 'renew');
    assert.equal(leaseVerdict(lease('b', '2026-01-01T00:00:10Z'), 'a', now), 'wait');
    assert.equal(leaseVerdict(lease('b', '2026-01-01T00:00:04Z'), 'a', now), 'acquire');
  });

  it('the work queue runs a key once per burst, never twice at once, and retries failures', async () => {
    const runs: string[] = [];
    let active = 0;
    let fails = 1;
    const q = new WorkQueue(async (k) => {
      active++;
      assert.equal(active, 1, 'one worker per key');
      runs.push(k);
      await new Promise((r) => setTimeout(r, 20));
      active--;
      if (k === 'flaky' && fails-- > 0) throw new Error('boom');
    }, { concurrency: 1, baseDelayMs: 10 });
    q.add('a');
    q.add('a');
    q.add('a');
    q.add('flaky');
    await q.drained();
    assert.deepEqual([...runs].sort(), ['a', 'a', 'flaky', 'flaky'], 'a queued (twice) while running runs once more; flaky is retried');
  });

  it('budget definitions: names within the limit, the file wins a clash, bad publications are refused', () => {
    const b = (ns: string, name: string): TokenBudget => ({ apiVersion: 'tollgate.dev/v1alpha1', kind: 'TokenBudget', metadata: { namespace: ns, name }, spec: { scope: { team: 't' }, limit: 5, window: 'hour' } });
    assert.equal(budgetNameOf(b('mcp-demo', 'daily.v2')), 'mcp-demo_daily-v2');
    const long = budgetNameOf(b('n'.repeat(60), 'x'.repeat(60)));
    assert.ok(long.length <= 64 && /^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(long), long);
    assert.notEqual(long, budgetNameOf(b('n'.repeat(60), 'x'.repeat(59) + 'y')));
    assert.throws(() => definitionOf({ ...b('ns', 'tz'), spec: { ...b('ns', 'tz').spec, timezone: 'Mars/Olympus' } }), /TokenBudget ns\/tz: budgets\[0\]\.timezone: "Mars\/Olympus" is not an IANA time zone/);
    const merged = mergeDefinitions([spec('a', 1)], [spec('a', 99), spec('b')]);
    assert.deepEqual(merged.budgets.map((x) => [x.name, x.limit]), [['a', 1], ['b', 10]]);
    assert.deepEqual(merged.clashes, ['a']);
    const enc = new TextEncoder();
    assert.deepEqual(parseDefinitions(enc.encode(encodeDefinitions({ revision: 3, budgets: [spec('c')] }))).budgets.map((x) => x.name), ['c']);
    assert.throws(() => parseDefinitions(enc.encode('{"revision":0,"budgets":[]}')), /revision must be a whole number/);
    assert.throws(() => parseDefinitions(enc.encode('{"revision":1,"budgets":[{"name":"x","limit":-1,"window":"day"}]}')), /definitions: budgets\[0\]\.limit: must be a whole number ≥ 1/);
  });

  it('MCPServer children: sidecars in the template, the profile as securityContext, Service to Envoy', () => {
    const s: McpServer = {
      apiVersion: 'tollgate.dev/v1alpha1', kind: 'MCPServer', metadata: { namespace: 'ns', name: 'notes', uid: 'u1' },
      spec: { resource: 'https://n/mcp', run: { image: 'img', port: 8080 } },
    };
    const [dep, svc, np] = childrenFor(s, { systemNamespace: 'tollgate-system', inject: { sidecarMode: 'containers' } });
    const pod = (dep!.spec.template as { spec: { containers: { name: string; securityContext?: Record<string, unknown> }[] } }).spec;
    assert.deepEqual(pod.containers.map((c) => c.name), ['server', 'tollgate-authz', 'tollgate-envoy'], 'the operator honours the sidecar mode');
    assert.equal(pod.containers[0]!.securityContext!.runAsUser, 65532);
    assert.deepEqual((svc!.spec.ports as { targetPort: number }[]).map((p) => p.targetPort), [10000]);
    assert.deepEqual((dep!.metadata.ownerReferences as { uid: string; controller: boolean }[])[0], { apiVersion: 'tollgate.dev/v1alpha1', kind: 'MCPServer', name: 'notes', uid: 'u1', controller: true, blockOwnerDeletion: true });
    assert.equal((np!.spec.egress as unknown[]).length, 2, 'DNS and the system namespace only, by default');
  });
});
