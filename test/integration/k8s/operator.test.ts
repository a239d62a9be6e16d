import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { defaultConfig } from '../../../src/authz/config.js';
import { startAuthz, type RunningAuthz } from '../../../src/authz/runtime.js';
import { DEFAULT_NATS_SETTINGS, type BudgetSpec } from '../../../src/budget/config.js';
import { NatsBudgetStore } from '../../../src/budget/nats-store.js';
import { windowAt } from '../../../src/budget/window.js';
import { generateSigningKeyPair, signingKeyFromText } from '../../../src/bundle/keys.js';
import { authorizationService } from '../../../src/envoy/protos.js';
import { DevIssuer } from '../../../src/identity/issuer.js';
import { KubeClient } from '../../../src/operator/kube-client.js';
import { kubeRequest } from '../../../src/operator/kube-rest.js';
import { Operator } from '../../../src/operator/operator.js';
import { provisionStreams } from '../../../src/controlplane/streams.js';
import { NatsServer } from '../../../src/nats/server.js';
import { applyAll, eventually, installCrds, sharedKubeCluster, yamlObjects, type KubeCluster } from '../../support/kube-cluster.js';

/**
 * `tollgate operator` against a real kube-apiserver, a real NATS and a real authz (gRPC Check):
 * MCPServer children, MCPPolicy published as signed bundles (and a broken edit that changes
 * nothing served), TokenBudget definitions applied live by authz, and leader election.
 */

const NS = 'op-test';
type Obj = Record<string, unknown> & { metadata?: Record<string, unknown>; spec?: Record<string, unknown>; status?: Record<string, unknown> };

interface CheckClient extends grpc.Client {
  Check(req: object, cb: (e: grpc.ServiceError | null, r: { status?: { code?: number } }) => void): void;
}

const quiet = { info: (o: object, m: string) => { if (process.env.TOLLGATE_TEST_VERBOSE) process.stderr.write(`operator: ${m} ${JSON.stringify(o)}\n`); }, warn: (o: object, m: string) => { if (process.env.TOLLGATE_TEST_VERBOSE) process.stderr.write(`operator: ${m} ${JSON.stringify(o)}\n`); }, error: (o: object, m: string) => process.stderr.write(`operator error: ${m} ${JSON.stringify(o)}\n`) };

const POLICY_V1 = `package tollgate.authz

default decision := {"allow": false, "reasons": ["not allowed by demo-policy"]}

decision := {"allow": true, "reasons": []} if input.mcp.tool == "search_docs"
`;

describe('tollgate operator against a real kube-apiserver, NATS and authz', function () {
  this.timeout(120_000);
  let cluster: KubeCluster;
  let custom: CustomObjectsApi;
  let core: CoreV1Api;
  let nats: NatsServer;
  let nc: NatsConnection;
  let operator: Operator;
  let standby: Operator;
  let dir: string;
  let issuer: DevIssuer;
  let authz: RunningAuthz;
  let client: CheckClient;
  let token: string;
  let operatorCore: CoreV1Api;

  const cr = (plural: string) => ({ group: 'tollgate.dev', version: 'v1alpha1', namespace: NS, plural });
  const get = async (plural: string, name: string): Promise<Obj> => (await custom.getNamespacedCustomObject({ ...cr(plural), name })) as Obj;
  const ready = (o: Obj): { status?: string; reason?: string; message?: string } | undefined =>
    ((o.status?.conditions ?? []) as { type: string; status?: string; reason?: string; message?: string }[]).find((c) => c.type === 'Ready');
  const update = async (plural: string, name: string, edit: (o: Obj) => void): Promise<void> => {
    for (let i = 0; i < 5; i++) {
      const o = await get(plural, name);
      edit(o);
      try {
        await custom.replaceNamespacedCustomObject({ ...cr(plural), name, body: o });
        return;
      } catch (e) {
        if ((e as { code?: number }).code !== 409) throw e;
      }
    }
  };
  const check = (tool: string): Promise<number | undefined> => {
    const body = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: tool, arguments: { query: 'refund policy' } } }));
    const headers = { ':path': '/mcp', ':method': 'POST', 'content-type': 'application/json', authorization: `Bearer ${token}` };
    const req = { attributes: { request: { http: { id: 'r1', method: 'POST', path: '/mcp', host: '127.0.0.1:10000', scheme: 'http', headers, rawBody: body } }, contextExtensions: { server: 'demo', namespace: NS } } };
    return new Promise((resolve, reject) => client.Check(req, (e, r) => (e ? reject(e) : resolve(r.status?.code))));
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-operator-'));
    cluster = await sharedKubeCluster();
    custom = cluster.kc.makeApiClient(CustomObjectsApi);
    core = cluster.kc.makeApiClient(CoreV1Api);
    await installCrds(cluster.kc);
    await applyAll(cluster.kc, [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } }]);
    // The operator runs as a plain user holding exactly the shipped ClusterRole and leader Role
    // (manifests/base/operator.yaml), so the API server's RBAC proves they are enough.
    const user = 'tollgate-operator-test';
    const rbac = yamlObjects([join('manifests', 'base', 'operator.yaml')]).filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role');
    await applyAll(cluster.kc, [
      ...rbac.map((r) => ({ ...r, metadata: { ...r.metadata, ...(r.kind === 'Role' ? { namespace: NS } : {}) } })),
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'tollgate-operator-test' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'tollgate-operator' }, subjects: [{ kind: 'User', name: user, apiGroup: 'rbac.authorization.k8s.io' }] } as never,
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'tollgate-operator-leader', namespace: NS },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'tollgate-operator-leader' }, subjects: [{ kind: 'User', name: user, apiGroup: 'rbac.authorization.k8s.io' }] } as never,
    ]);
    const operatorKc = cluster.userConfig(user);
    operatorCore = operatorKc.makeApiClient(CoreV1Api);
    nats = await NatsServer.start();
    nc = await connect({ servers: nats.url });
    // The control plane creates the mesh's streams; the operator only opens them.
    await provisionStreams(nc);
    const pair = await generateSigningKeyPair('EdDSA');
    writeFileSync(join(dir, 'verify.pem'), pair.publicPem);
    const signingKey = await signingKeyFromText(pair.privatePem, 'test key');
    const make = (identity: string): Operator => new Operator({
      kube: new KubeClient(operatorKc), nats: nc, signingKey, identity, leaseNamespace: NS, leaseDurationMs: 3000, resyncMs: 1000,
      mesh: { systemNamespace: 'tollgate-system', inject: {} }, log: quiet,
    });
    operator = make('op-a');
    operator.start();
    await eventually('op-a leads', async () => (operator.isLeader ? true : undefined));
    standby = make('op-b');
    standby.start();

    issuer = await DevIssuer.start({ port: 0, stateDir: dir });
    token = await issuer.mint({ sub: 'alice', team: 'payments', audience: 'http://127.0.0.1:10000/mcp', ttlSec: 600 });
  });

  after(async () => {
    client?.close();
    await authz?.close();
    await standby?.stop();
    await operator?.stop();
    await nc?.close();
    await nats?.dispose();
    await issuer?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs under RBAC: the shipped role does not reach Secrets or Pods', async () => {
    await assert.rejects(operatorCore.listNamespacedSecret({ namespace: NS }), (e: { code?: number }) => e.code === 403);
    await assert.rejects(operatorCore.listNamespacedPod({ namespace: NS }), (e: { code?: number }) => e.code === 403);
  });

  it('MCPServer: Deployment with sidecars and the permission profile, Service, NetworkPolicy; update; delete', async () => {
    await custom.createNamespacedCustomObject({ ...cr('mcpservers'), body: {
      apiVersion: 'tollgate.dev/v1alpha1', kind: 'MCPServer', metadata: { name: 'notes' },
      spec: {
        resource: 'https://notes.example.com/mcp', upstream: { service: 'notes', port: 80 },
        run: { image: 'example/notes:1', port: 8080, permissions: { runAsUser: 10001, filesystem: [{ path: '/data', sizeLimit: '64Mi' }], egress: [{ cidr: '203.0.113.0/24', ports: [443] }] } },
      },
    } });
    const dep = await eventually('Deployment notes', () => kubeRequest<Obj>(cluster.kc, 'GET', `/apis/apps/v1/namespaces/${NS}/deployments/notes`));
    const pod = (dep.spec!.template as { spec: { initContainers: { name: string; restartPolicy?: string }[]; containers: Obj[]; volumes: Obj[]; automountServiceAccountToken: boolean } }).spec;
    assert.deepEqual(pod.initContainers.map((c) => [c.name, c.restartPolicy]), [['tollgate-authz', 'Always'], ['tollgate-envoy', 'Always']]);
    const server = pod.containers[0]!;
    assert.equal(server.image, 'example/notes:1');
    assert.deepEqual(server.securityContext, {
      runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true,
      privileged: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
    });
    assert.deepEqual(server.volumeMounts, [{ name: 'writable-0', mountPath: '/data' }]);
    assert.ok(pod.volumes.some((v) => v.name === 'writable-0' && (v.emptyDir as Obj).sizeLimit === '64Mi'));
    assert.equal(pod.automountServiceAccountToken, false);
    // The reconcile writes the Deployment first: the Service may follow a moment later.
    const svc = await eventually('Service notes', () => kubeRequest<Obj>(cluster.kc, 'GET', `/api/v1/namespaces/${NS}/services/notes`));
    assert.deepEqual((svc.spec!.ports as Obj[]).map((p) => [p.port, p.targetPort]), [[80, 10000]]);
    const np = await eventually('NetworkPolicy notes', () => kubeRequest<Obj>(cluster.kc, 'GET', `/apis/networking.k8s.io/v1/namespaces/${NS}/networkpolicies/notes`));
    assert.deepEqual((np.spec!.ingress as { ports: Obj[] }[])[0]!.ports.map((p) => p.port), [10000, 9902], 'only Envoy is reachable');
    const egress = (np.spec!.egress as Obj[]).find((e) => JSON.stringify(e.to ?? []).includes('203.0.113.0/24'));
    assert.deepEqual(egress, { to: [{ ipBlock: { cidr: '203.0.113.0/24' } }], ports: [{ protocol: 'TCP', port: 443 }] }, 'the permission profile\'s egress');
    assert.deepEqual(np.spec!.policyTypes, ['Ingress', 'Egress']);

    const s1 = await eventually('notes Ready', async () => { const o = await get('mcpservers', 'notes'); return ready(o)?.status === 'True' ? o : undefined; });
    assert.equal(s1.status!.observedGeneration, 1);
    assert.deepEqual(s1.metadata!.finalizers, ['tollgate.dev/operator']);
    // The Event follows the status write.
    await eventually('an Applied event', async () => {
      const events = await core.listNamespacedEvent({ namespace: NS, fieldSelector: 'involvedObject.name=notes' });
      return events.items.some((e) => e.reason === 'Applied' && e.involvedObject.kind === 'MCPServer') ? true : undefined;
    });

    // Update: the Deployment follows, observedGeneration moves.
    await update('mcpservers', 'notes', (o) => { Object.assign(o.spec!.run as Obj, { image: 'example/notes:2', replicas: 3 }); });
    await eventually('Deployment updated', async () => {
      const d = await kubeRequest<Obj>(cluster.kc, 'GET', `/apis/apps/v1/namespaces/${NS}/deployments/notes`);
      const t = d.spec!.template as { spec: { containers: Obj[] } };
      return d.spec!.replicas === 3 && t.spec.containers[0]!.image === 'example/notes:2' ? true : undefined;
    });
    await eventually('observedGeneration 2', async () => ((await get('mcpservers', 'notes')).status?.observedGeneration === 2 ? true : undefined));

    // A spec that cannot be governed: status says why, the running Deployment is left as it was.
    await update('mcpservers', 'notes', (o) => { (o.spec!.run as Obj).port = 9191; });
    const bad = await eventually('InvalidSpec', async () => { const o = await get('mcpservers', 'notes'); return ready(o)?.reason === 'InvalidSpec' ? o : undefined; });
    assert.match(ready(bad)!.message!, /port 9191 is needed by the authz sidecar .* but container "server" already declares it/);
    const still = await kubeRequest<Obj>(cluster.kc, 'GET', `/apis/apps/v1/namespaces/${NS}/deployments/notes`);
    assert.equal((still.spec!.template as { spec: { containers: Obj[] } }).spec.containers[0]!.image, 'example/notes:2');

    // Delete: the finalizer removes the children (no garbage collector runs here), then the object goes.
    await custom.deleteNamespacedCustomObject({ ...cr('mcpservers'), name: 'notes' });
    await eventually('MCPServer gone', async () => { try { await get('mcpservers', 'notes'); return undefined; } catch { return true; } });
    for (const path of [`/apis/apps/v1/namespaces/${NS}/deployments/notes`, `/api/v1/namespaces/${NS}/services/notes`, `/apis/networking.k8s.io/v1/namespaces/${NS}/networkpolicies/notes`]) {
      await assert.rejects(kubeRequest(cluster.kc, 'GET', path), /not found/, path);
    }
  });

  it('MCPServer spec.source: the bridge over the derived image, secretEnv by reference, no egress; update; delete', async () => {
    const depPath = `/apis/apps/v1/namespaces/${NS}/deployments/fs`;
    await custom.createNamespacedCustomObject({ ...cr('mcpservers'), body: {
      apiVersion: 'tollgate.dev/v1alpha1', kind: 'MCPServer', metadata: { name: 'fs' },
      spec: {
        resource: 'https://fs.example.com/mcp',
        source: { package: 'npx:@modelcontextprotocol/server-filesystem@2026.8.31', args: ['/data'] },
        run: { secretEnv: [{ name: 'API_KEY', secretName: 'fs-keys', key: 'api' }], permissions: { filesystem: [{ path: '/data' }] } },
      },
    } });
    const dep = await eventually('Deployment fs', () => kubeRequest<Obj>(cluster.kc, 'GET', depPath));
    const tpl = dep.spec!.template as { metadata: { annotations: Record<string, string> }; spec: { initContainers: { name: string }[]; containers: Obj[] } };
    assert.deepEqual(tpl.spec.initContainers.map((c) => c.name), ['tollgate-authz', 'tollgate-envoy'], 'sidecars as for any MCPServer');
    const c = tpl.spec.containers[0]! as { image: string; command: string[]; args: string[]; env: Obj[]; securityContext: Obj };
    assert.equal(c.image, 'localhost/tollgate-server-npm/modelcontextprotocol/server-filesystem:2026.8.31');
    assert.deepEqual(c.command.slice(0, 3), ['node', '/opt/tollgate/dist/src/cli/main.js', 'bridge']);
    assert.ok(c.command.join(' ').includes('--launch-file /opt/server/tollgate-launch.json'), c.command.join(' '));
    assert.deepEqual(c.args, ['/data']);
    assert.equal(tpl.metadata.annotations['tollgate.dev/upstream-port'], '8080');
    assert.deepEqual(c.env.find((e) => e.name === 'API_KEY'), { name: 'API_KEY', valueFrom: { secretKeyRef: { name: 'fs-keys', key: 'api' } } });
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    const np = await eventually('NetworkPolicy fs', () => kubeRequest<Obj>(cluster.kc, 'GET', `/apis/networking.k8s.io/v1/namespaces/${NS}/networkpolicies/fs`));
    assert.ok(!JSON.stringify(np.spec!.egress).includes('ipBlock'), 'no egress beyond DNS and the mesh by default');
    const s1 = await eventually('fs Ready', async () => { const o = await get('mcpservers', 'fs'); return ready(o)?.status === 'True' ? o : undefined; });
    assert.match(ready(s1)!.message!, /stdio server npx:@modelcontextprotocol\/server-filesystem@2026\.8\.31 behind the bridge/);

    // Update: a new pinned version is a new image; spec.source.image overrides the derived one.
    await update('mcpservers', 'fs', (o) => { (o.spec!.source as Obj).package = 'npx:@modelcontextprotocol/server-filesystem@2026.9.1'; });
    await eventually('image follows the version', async () => {
      const d = await kubeRequest<Obj>(cluster.kc, 'GET', depPath);
      return (d.spec!.template as { spec: { containers: Obj[] } }).spec.containers[0]!.image === 'localhost/tollgate-server-npm/modelcontextprotocol/server-filesystem:2026.9.1' ? true : undefined;
    });
    await update('mcpservers', 'fs', (o) => { (o.spec!.source as Obj).image = 'registry.example/mcp/fs:custom'; });
    await eventually('image override', async () => {
      const d = await kubeRequest<Obj>(cluster.kc, 'GET', depPath);
      return (d.spec!.template as { spec: { containers: Obj[] } }).spec.containers[0]!.image === 'registry.example/mcp/fs:custom' ? true : undefined;
    });

    await custom.deleteNamespacedCustomObject({ ...cr('mcpservers'), name: 'fs' });
    await eventually('MCPServer fs gone', async () => { try { await get('mcpservers', 'fs'); return undefined; } catch { return true; } });
    for (const path of [depPath, `/api/v1/namespaces/${NS}/services/fs`, `/apis/networking.k8s.io/v1/namespaces/${NS}/networkpolicies/fs`]) {
      await assert.rejects(kubeRequest(cluster.kc, 'GET', path), /not found/, path);
    }
  });

  it('MCPPolicy: published as a signed bundle that authz serves; a broken edit shows file:line while the old revision keeps serving', async () => {
    await custom.createNamespacedCustomObject({ ...cr('mcppolicies'), body: {
      apiVersion: 'tollgate.dev/v1alpha1', kind: 'MCPPolicy', metadata: { name: 'demo-policy' },
      spec: { servers: ['demo'], rego: { sources: [{ name: 'authz.rego', content: POLICY_V1 }] } },
    } });
    const p1 = await eventually('policy published', async () => { const o = await get('mcppolicies', 'demo-policy'); return ready(o)?.status === 'True' ? o : undefined; }, 60_000);
    assert.equal(p1.status!.revision, 1);
    assert.equal(p1.status!.pointerKey, `mcppolicy.${NS}.demo-policy`);

    const budgets = join(dir, 'budgets.yaml');
    writeFileSync(budgets, `budgets: []\nnats:\n  url: ${nats.url}\n  definitions: true\n`);
    const cfg = defaultConfig();
    cfg.listen = { host: '127.0.0.1', port: 0 };
    cfg.stateDir = dir;
    cfg.decisionLogDir = null;
    cfg.identity.issuer = issuer.url;
    cfg.server = { name: 'demo', namespace: NS };
    cfg.policy.nats = { url: nats.url, verificationKey: join(dir, 'verify.pem'), pointerKey: `mcppolicy.${NS}.demo-policy` };
    cfg.budgetsFile = budgets;
    authz = await startAuthz(cfg);
    const Check = grpc.makeGenericClientConstructor(authorizationService(), 'Authorization');
    client = new Check(`127.0.0.1:${authz.port}`, grpc.credentials.createInsecure()) as unknown as CheckClient;
    await eventually('authz loaded revision 1', async () => (authz.holder.get()?.revision === '1' ? true : undefined));
    assert.equal(await check('search_docs'), 0);
    assert.equal(await check('delete_records'), 7);

    await update('mcppolicies', 'demo-policy', (o) => {
      (o.spec!.rego as Obj).sources = [{ name: 'authz.rego', content: POLICY_V1 + '\ndecision := {"allow": true if input.mcp.tool == "delete_records"\n' }];
    });
    const broken = await eventually('BuildFailed in status', async () => { const o = await get('mcppolicies', 'demo-policy'); return ready(o)?.reason === 'BuildFailed' ? o : undefined; }, 60_000);
    assert.match(ready(broken)!.message!, /revision 1 keeps serving/);
    assert.match(ready(broken)!.message!, /^authz\.rego:7(:\d+)?: rego_parse_error/m, 'the error names the module and line');
    assert.equal(broken.status!.revision, 1);
    assert.equal(broken.status!.observedGeneration, 2);
    assert.equal(authz.holder.get()?.revision, '1');
    assert.equal(await check('search_docs'), 0, 'the old revision still decides');
    assert.equal(await check('delete_records'), 7);
    await eventually('a BuildFailed event', async () => {
      const events = await core.listNamespacedEvent({ namespace: NS, fieldSelector: 'involvedObject.name=demo-policy' });
      return events.items.some((e) => e.reason === 'BuildFailed' && e.type === 'Warning') ? true : undefined;
    });

    await update('mcppolicies', 'demo-policy', (o) => {
      (o.spec!.rego as Obj).sources = [{ name: 'authz.rego', content: POLICY_V1 + '\ndecision := {"allow": true, "reasons": []} if input.mcp.tool == "delete_records"\n' }];
    });
    await eventually('authz on revision 2', async () => (authz.holder.get()?.revision === '2' ? true : undefined), 60_000);
    assert.equal(await check('delete_records'), 0);
    // Status is written after every key is published: authz may see the revision first.
    await eventually('Ready=Published in status', async () => (ready(await get('mcppolicies', 'demo-policy'))?.reason === 'Published' ? true : undefined));
  });

  it('TokenBudget: an edit changes the running authz\'s decisions within seconds; status shows consumption', async () => {
    await custom.createNamespacedCustomObject({ ...cr('tokenbudgets'), body: {
      apiVersion: 'tollgate.dev/v1alpha1', kind: 'TokenBudget', metadata: { name: 'payments-daily' },
      spec: { scope: { team: 'payments' }, limit: 100000, window: 'day' },
    } });
    const b1 = await eventually('budget published', async () => { const o = await get('tokenbudgets', 'payments-daily'); return ready(o)?.status === 'True' ? o : undefined; });
    const budgetName = `${NS}_payments-daily`;
    assert.equal(b1.status!.budgetName, budgetName);
    await eventually('authz applies the budget', async () => (authz.holder.get() && (await check('search_docs')) === 0 ? true : undefined));

    // Another replica charges 400 tokens to the shared state; the operator's status shows it.
    const spec: BudgetSpec = { name: budgetName, namespace: NS, scope: { team: 'payments' }, limit: 100000, window: 'day', timezone: 'UTC', action: 'deny', tokenizer: 'o200k_base' };
    const replica = await NatsBudgetStore.open([spec], { ...DEFAULT_NATS_SETTINGS, url: nats.url }, null);
    replica.spend(spec, windowAt('day', 'UTC', Date.now()), 400);
    await replica.close();
    const used = await eventually('status.used', async () => { const o = await get('tokenbudgets', 'payments-daily'); return (o.status?.used as number) >= 400 ? o : undefined; });
    assert.equal(((used.status!.conditions as { type: string; status: string }[]).find((c) => c.type === 'Exhausted'))!.status, 'False');

    // Lower the limit below what was used: the next calls are refused, within seconds.
    const t0 = Date.now();
    await update('tokenbudgets', 'payments-daily', (o) => { o.spec!.limit = 100; });
    await eventually('authz refuses under the new limit', async () => ((await check('search_docs')) === 7 ? true : undefined), 15_000, 50);
    const took = Date.now() - t0;
    assert.ok(took < 10_000, `took ${took} ms`);
    process.stderr.write(`      (TokenBudget edit to refused Check: ${took} ms)\n`);
    await eventually('Exhausted in status', async () => {
      const o = await get('tokenbudgets', 'payments-daily');
      return (o.status!.conditions as { type: string; status: string }[]).some((c) => c.type === 'Exhausted' && c.status === 'True') ? true : undefined;
    });

    // Delete: the definition is withdrawn and the calls pass again.
    await custom.deleteNamespacedCustomObject({ ...cr('tokenbudgets'), name: 'payments-daily' });
    await eventually('authz without the budget', async () => ((await check('search_docs')) === 0 ? true : undefined));
  });

  it('leader election: the standby does nothing until the leader gives up its Lease, then takes over', async () => {
    assert.equal(standby.isLeader, false);
    await operator.stop();
    await eventually('op-b leads', async () => (standby.isLeader ? true : undefined), 15_000);
    const lease = await kubeRequest<Obj>(cluster.kc, 'GET', `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/tollgate-operator`);
    assert.equal(lease.spec!.holderIdentity, 'op-b');
    await custom.createNamespacedCustomObject({ ...cr('mcpservers'), body: {
      apiVersion: 'tollgate.dev/v1alpha1', kind: 'MCPServer', metadata: { name: 'external' },
      spec: { resource: 'https://ext.example.com/mcp', upstream: { service: 'ext', port: 80 } },
    } });
    const o = await eventually('reconciled by op-b', async () => { const x = await get('mcpservers', 'external'); return ready(x)?.status === 'True' ? x : undefined; });
    assert.equal(ready(o)!.reason, 'ExternalServer');
  });
});
