import { strict as assert } from 'node:assert';
import { AppsV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { parse as parseYaml } from 'yaml';
import { generateSigningKeyPair, signingKeyFromText } from '../../../src/bundle/keys.js';
import { provisionStreams } from '../../../src/controlplane/streams.js';
import { validateGatewayConfig } from '../../../src/gateway/config.js';
import { KubeClient } from '../../../src/operator/kube-client.js';
import { Operator } from '../../../src/operator/operator.js';
import { NatsServer } from '../../../src/nats/server.js';
import { applyAll, eventually, installCrds, removeTollgateObjects, sharedKubeCluster, type KubeCluster } from '../../support/kube-cluster.js';

/**
 * Issue 15: a VirtualMCPServer is checked by the API server's schema, and the operator turns it
 * into the `tollgate gateway` configuration (validated against the gateway's own schema), a
 * Deployment and a Service listing its member MCPServers' governed URLs.
 */

const NS = 'vmcp-test';
const quiet = { info: () => undefined, warn: () => undefined, error: (o: object, m: string) => process.stderr.write(`operator error: ${m} ${JSON.stringify(o)}\n`) };
type Obj = { metadata?: { name?: string }; spec?: Record<string, unknown>; status?: { endpoint?: string; members?: { name: string; url: string }[]; conditions?: { type: string; status: string; reason: string; message: string }[] } };

describe('VirtualMCPServer against a real kube-apiserver', function () {
  this.timeout(120_000);
  let cluster: KubeCluster;
  let custom: CustomObjectsApi;
  let apps: AppsV1Api;
  let core: CoreV1Api;
  let nats: NatsServer;
  let nc: NatsConnection;
  let operator: Operator;
  const cr = { group: 'tollgate.dev', version: 'v1alpha1', namespace: NS, plural: 'virtualmcpservers' };
  const vmcp = (name: string, spec: Record<string, unknown>): Record<string, unknown> => ({ apiVersion: 'tollgate.dev/v1alpha1', kind: 'VirtualMCPServer', metadata: { name, namespace: NS }, spec });
  const good = { servers: [{ name: 'demo' }, { name: 'notes', prefix: false }], mode: 'optimizer', identity: { issuer: 'https://issuer.example.com' }, delegation: { clientId: 'gateway', clientSecretRef: { name: 'gw-secret' } } };
  const ready = async (name: string): Promise<Obj['status'] & object> => {
    const o = (await custom.getNamespacedCustomObject({ ...cr, name })) as Obj;
    return o.status ?? {};
  };

  before(async () => {
    cluster = await sharedKubeCluster();
    custom = cluster.kc.makeApiClient(CustomObjectsApi);
    apps = cluster.kc.makeApiClient(AppsV1Api);
    core = cluster.kc.makeApiClient(CoreV1Api);
    await installCrds(cluster.kc);
    await applyAll(cluster.kc, [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } }]);
    nats = await NatsServer.start();
    nc = await connect({ servers: nats.url });
    await provisionStreams(nc);
    const pair = await generateSigningKeyPair('EdDSA');
    operator = new Operator({
      kube: new KubeClient(cluster.kc), nats: nc, signingKey: await signingKeyFromText(pair.privatePem, 'k'), identity: 'vmcp', leaseNamespace: NS,
      leaseDurationMs: 3000, resyncMs: 1000, mesh: { systemNamespace: 'tollgate-system', inject: { authzImage: 'localhost/tollgate:test' } }, log: quiet,
    });
    operator.start();
    await eventually('the operator leads', async () => (operator.isLeader ? true : undefined));
  });

  after(async () => {
    // The API server is shared with the other k8s tests, whose operators reconcile every
    // namespace (TokenBudgets are published cluster-wide): leave nothing behind. The operator
    // still runs here, so it releases its finalizers.
    if (operator) await removeTollgateObjects(cluster.kc, NS);
    await operator?.stop();
    await nc?.close();
    await nats?.dispose();
  });

  it('the API server refuses bad specs with the field named', async () => {
    const refused = async (spec: Record<string, unknown>, re: RegExp): Promise<void> => {
      await assert.rejects(custom.createNamespacedCustomObject({ ...cr, body: vmcp('bad', spec) }), (e: { code?: number; body?: unknown }) => (e.code === 422 && re.test(String(e.body)) ? true : assert.fail(`${JSON.stringify(spec)}: ${String(e.body)}`)));
    };
    await refused({ ...good, mode: 'turbo' }, /spec\.mode: Unsupported value: \\"turbo\\"/);
    await refused({ ...good, servers: [] }, /spec\.servers: Invalid value: .*should have at least 1 items/);
    await refused({ ...good, servers: [{ name: 'Not_A_Label' }] }, /spec\.servers\[0\]\.name: Invalid value: \\"Not_A_Label\\"/);
    await refused({ ...good, identity: { issuer: 'ftp://x' } }, /spec\.identity\.issuer/);
    const { delegation: _d, ...noDelegation } = good;
    await refused(noDelegation, /spec\.delegation: Required value/);
  });

  it('the operator renders the gateway for its members: a config the gateway accepts, a Deployment and a Service', async () => {
    await applyAll(cluster.kc, [
      { apiVersion: 'tollgate.dev/v1alpha1', kind: 'MCPServer', metadata: { name: 'demo', namespace: NS }, spec: { resource: 'http://demo.vmcp-test.svc/mcp', audience: ['demo-aud'], upstream: { service: 'demo', port: 8080 } } },
      { apiVersion: 'tollgate.dev/v1alpha1', kind: 'MCPServer', metadata: { name: 'notes', namespace: NS }, spec: { resource: 'http://notes.vmcp-test.svc/mcp', upstream: { service: 'notes-svc', port: 9000, path: '/rpc' } } },
      vmcp('hub', good),
    ] as never);
    const st = await eventually('hub Ready', async () => { const s = await ready('hub'); return s.conditions?.find((c) => c.type === 'Ready')?.status === 'True' ? s : undefined; }, 30_000);
    assert.equal(st.endpoint, `http://hub.${NS}.svc:80/mcp`);
    assert.deepEqual(st.members, [{ name: 'demo', url: `http://demo.${NS}.svc:8080/mcp` }, { name: 'notes', url: `http://notes-svc.${NS}.svc:9000/rpc` }]);
    const cm = await core.readNamespacedConfigMap({ namespace: NS, name: 'hub-gateway' });
    const cfg = validateGatewayConfig(parseYaml(cm.data!['gateway.yaml']!));
    assert.equal(cfg.mode, 'optimizer');
    assert.deepEqual(cfg.servers, [
      { name: 'demo', url: `http://demo.${NS}.svc:8080/mcp`, audience: 'demo-aud', prefix: true },
      { name: 'notes', url: `http://notes-svc.${NS}.svc:9000/rpc`, audience: `http://notes.${NS}.svc/mcp`, prefix: false },
    ]);
    assert.equal(cfg.delegation.client_secret_file, '/etc/tollgate/gateway-secret/client-secret');
    const d = await apps.readNamespacedDeployment({ namespace: NS, name: 'hub-gateway' });
    const c = d.spec!.template.spec!.containers[0]!;
    assert.deepEqual([c.image, c.args], ['localhost/tollgate:test', ['gateway', '--config', '/etc/tollgate/gateway/gateway.yaml']]);
    assert.equal(c.securityContext?.readOnlyRootFilesystem, true);
    const svc = await core.readNamespacedService({ namespace: NS, name: 'hub' });
    assert.deepEqual(svc.spec!.ports!.map((p) => [p.port, p.targetPort]), [[80, 10100]]);
  });

  it('a missing member keeps the gateway from being written, with the reason in status; deletion removes the children', async () => {
    await applyAll(cluster.kc, [vmcp('broken', { ...good, servers: [{ name: 'demo' }, { name: 'ghost' }] })] as never);
    const st = await eventually('broken not Ready', async () => { const s = await ready('broken'); const r = s.conditions?.find((c) => c.type === 'Ready'); return r?.status === 'False' ? r : undefined; }, 30_000);
    assert.equal(st.reason, 'MemberMissing');
    assert.match(st.message, /no MCPServer ghost in namespace vmcp-test/);
    await assert.rejects(apps.readNamespacedDeployment({ namespace: NS, name: 'broken-gateway' }), (e: { code?: number }) => e.code === 404);

    await custom.deleteNamespacedCustomObject({ ...cr, name: 'hub' });
    await eventually('hub children removed', async () => {
      try { await apps.readNamespacedDeployment({ namespace: NS, name: 'hub-gateway' }); return undefined; } catch (e) { return (e as { code?: number }).code === 404 ? true : undefined; }
    }, 30_000);
    await assert.rejects(core.readNamespacedConfigMap({ namespace: NS, name: 'hub-gateway' }), (e: { code?: number }) => e.code === 404);
  });
});
