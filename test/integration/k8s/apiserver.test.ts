import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CoreV1Api, CustomObjectsApi, type KubernetesObject, type V1Pod } from '@kubernetes/client-node';
import { WebhookServer } from '../../../src/k8s/webhook.js';
import { freePort } from '../../../src/util/net.js';
import { applyAll, installCrds, loopbackServingCert, sharedKubeCluster, yamlObjects, type KubeCluster } from '../../support/kube-cluster.js';

/**
 * The CRDs, the MutatingWebhookConfiguration and the webhook against a real kube-apiserver + etcd:
 * the API server validates specs with the CRDs' schemas and calls the webhook by URL (with the
 * caBundle) for every pod created in a labelled namespace.
 */

const GOVERNED = 'k8s-governed';
const PLAIN = 'k8s-plain';

function apiMessage(e: unknown): string {
  const body = (e as { body?: unknown }).body;
  if (typeof body === 'string') {
    try {
      return String((JSON.parse(body) as { message?: string }).message ?? body);
    } catch {
      return body;
    }
  }
  return (e as Error).message;
}

async function rejected(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return apiMessage(e);
  }
  assert.fail('the API server accepted it');
}

function pod(name: string, extra: { annotations?: Record<string, string>; labels?: Record<string, string>; ports?: boolean } = {}): V1Pod {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, labels: { 'app.kubernetes.io/name': 'weather', ...extra.labels }, ...(extra.annotations ? { annotations: extra.annotations } : {}) },
    spec: { containers: [{ name: 'server', image: 'example/weather:1', ...(extra.ports === false ? {} : { ports: [{ containerPort: 8080 }] }) }] },
  };
}

function names(p: V1Pod): { init: string[]; containers: string[] } {
  return { init: (p.spec?.initContainers ?? []).map((c) => c.name), containers: (p.spec?.containers ?? []).map((c) => c.name) };
}

/** The shipped MutatingWebhookConfiguration, pointed at a webhook on loopback by URL. */
function webhookConfiguration(url: string, caPem: string): KubernetesObject {
  const [cfg] = yamlObjects([resolve('manifests', 'base', 'webhook.yaml')]).filter((o) => o.kind === 'MutatingWebhookConfiguration');
  assert.ok(cfg, 'manifests/base/webhook.yaml has a MutatingWebhookConfiguration');
  const c = structuredClone(cfg) as KubernetesObject & { webhooks: { clientConfig: Record<string, unknown> }[] };
  for (const w of c.webhooks) w.clientConfig = { url, caBundle: Buffer.from(caPem).toString('base64') };
  return c;
}

describe('Kubernetes: CRDs and sidecar injection against a real kube-apiserver', function () {
  this.timeout(120_000);
  let cluster: KubeCluster;
  let core: CoreV1Api;
  let custom: CustomObjectsApi;
  let webhook: WebhookServer | null = null;
  let dir: string;
  let certs: ReturnType<typeof loopbackServingCert>;
  let port: number;

  const startWebhook = async (sidecarMode: 'native' | 'containers' = 'native'): Promise<void> => {
    webhook = await WebhookServer.start({
      certFile: certs.certFile, keyFile: certs.keyFile, host: '127.0.0.1', port, reloadIntervalMs: 0,
      inject: { sidecarMode }, log: () => undefined,
    });
  };

  before(async () => {
    cluster = await sharedKubeCluster();
    core = cluster.kc.makeApiClient(CoreV1Api);
    custom = cluster.kc.makeApiClient(CustomObjectsApi);
    dir = mkdtempSync(join(tmpdir(), 'tollgate-k8s-admission-'));
    certs = loopbackServingCert(dir);
    port = await freePort();
    await startWebhook();
    await installCrds(cluster.kc);
    await applyAll(cluster.kc, [
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: GOVERNED, labels: { 'tollgate.dev/inject': 'enabled' } } },
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: PLAIN } },
      webhookConfiguration(`https://127.0.0.1:${port}/mutate`, certs.caPem),
    ]);
  });

  after(async () => {
    await webhook?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('CRD schemas', () => {
    const create = (plural: string, body: object): Promise<unknown> =>
      custom.createNamespacedCustomObject({ group: 'tollgate.dev', version: 'v1alpha1', namespace: PLAIN, plural, body });
    const budget = (name: string, spec: object): object => ({ apiVersion: 'tollgate.dev/v1alpha1', kind: 'TokenBudget', metadata: { name }, spec });

    it('accepts the shipped examples and fills in defaults', async () => {
      const created = await create('tokenbudgets', budget('ok', { scope: { team: 'forecasting' }, limit: 1000, window: 'day' })) as { spec: Record<string, unknown> };
      assert.equal(created.spec.action, 'deny');
      assert.equal(created.spec.timezone, 'UTC');
      const examples = yamlObjects([resolve('manifests/examples/mcpserver.yaml'), resolve('manifests/examples/mcppolicy.yaml'), resolve('manifests/examples/tokenbudget.yaml')]);
      for (const o of examples) {
        const body = { ...o, metadata: { ...o.metadata, namespace: PLAIN } };
        await create(`${o.kind!.toLowerCase().replace(/y$/, 'ie')}s`, body);
      }
    });

    it('rejects bad specs with the field and what is allowed', async () => {
      assert.match(await rejected(create('tokenbudgets', budget('bad-window', { scope: { team: 't' }, limit: 10, window: 'week' }))),
        /spec\.window: Unsupported value: "week": supported values: "hour", "day", "month"/);
      assert.match(await rejected(create('tokenbudgets', budget('bad-limit', { scope: { team: 't' }, limit: 0, window: 'day' }))),
        /spec\.limit: Invalid value: 0: spec\.limit in body should be greater than or equal to 1/);
      assert.match(await rejected(create('tokenbudgets', budget('no-scope', { scope: {}, limit: 10, window: 'day' }))),
        /spec\.scope: Invalid value: .*should have at least 1 properties/);
      assert.match(await rejected(create('mcppolicies', { apiVersion: 'tollgate.dev/v1alpha1', kind: 'MCPPolicy', metadata: { name: 'both' },
        spec: { rego: { sources: [{ name: 'a.rego', content: 'package a' }] }, bundle: { url: 'https://b.example/b.tar.gz' } } })),
      /set exactly one of spec\.rego or spec\.bundle/);
      assert.match(await rejected(create('mcppolicies', { apiVersion: 'tollgate.dev/v1alpha1', kind: 'MCPPolicy', metadata: { name: 'bad-file' },
        spec: { rego: { sources: [{ name: '../etc/passwd', content: 'package a' }] } } })),
      /spec\.rego\.sources\[0\]\.name in body should match/);
      assert.match(await rejected(create('mcpservers', { apiVersion: 'tollgate.dev/v1alpha1', kind: 'MCPServer', metadata: { name: 'nowhere' },
        spec: { resource: 'https://x.example/mcp' } })),
      /set spec\.upstream \(an existing Service\), spec\.run \(a server the operator runs\) or spec\.source/);
      assert.match(await rejected(create('mcpservers', { apiVersion: 'tollgate.dev/v1alpha1', kind: 'MCPServer', metadata: { name: 'root' },
        spec: { resource: 'https://x.example/mcp', run: { image: 'x', port: 8080, permissions: { runAsUser: 0 } } } })),
      /spec\.run\.permissions\.runAsUser: Invalid value: 0/);
    });
  });

  describe('MCPServer spec.source', () => {
    const server = (name: string, spec: object): object => ({ apiVersion: 'tollgate.dev/v1alpha1', kind: 'MCPServer', metadata: { name }, spec: { resource: 'https://x.example/mcp', ...spec } });
    const create = (body: object): Promise<unknown> =>
      custom.createNamespacedCustomObject({ group: 'tollgate.dev', version: 'v1alpha1', namespace: PLAIN, plural: 'mcpservers', body });

    it('accepts npx:, uvx: and image: sources, alone or tuned by spec.run without image or port', async () => {
      await create(server('src-npx', { source: { package: 'npx:@modelcontextprotocol/server-filesystem@2026.8.31', args: ['/data'] },
        run: { replicas: 2, secretEnv: [{ name: 'API_KEY', secretName: 'keys', key: 'api' }], permissions: { filesystem: [{ path: '/data' }] } } }));
      await create(server('src-uvx', { source: { package: 'uvx:mcp-server-time==2026.10.19' } }));
      await create(server('src-img', { source: { package: 'image:registry.example/team/fetch:1.2', image: 'registry.example/team/fetch-bridged:1.2' } }));
    });

    it('refuses a bad source string, source with upstream, source with run.image, and run without image', async () => {
      const bad = async (name: string, spec: object, want: RegExp): Promise<void> => assert.match(await rejected(create(server(name, spec))), want);
      for (const [i, pkg] of ['npx:@modelcontextprotocol/server-filesystem', 'pip:requests@1', 'uvx:mcp-server-time', 'image:UPPER/Case', 'npx:x@1;rm -rf /'].entries()) {
        await bad(`bad-src-${i}`, { source: { package: pkg } }, /spec\.source\.package: Invalid value: "string": must be npx:PKG@VERSION, uvx:PKG@VERSION or image:REF with an exact version/);
      }
      await bad('src-and-upstream', { source: { package: 'npx:a@1' }, upstream: { service: 's', port: 80 } }, /spec\.source and spec\.upstream exclude each other/);
      await bad('src-and-image', { source: { package: 'npx:a@1' }, run: { image: 'x' } }, /with spec\.source the image and command come from the source/);
      await bad('run-no-image', { run: { port: 8080 } }, /spec\.run needs image and port unless spec\.source names the server/);
      await bad('src-no-package', { source: { image: 'x' } }, /spec\.source\.package: Required value/);
    });
  });

  describe('admission', () => {
    it('a pod in a labelled namespace gets the native sidecars from the webhook the API server calls', async () => {
      const p = await core.createNamespacedPod({ namespace: GOVERNED, body: pod('governed') });
      assert.deepEqual(names(p), { init: ['tollgate-authz', 'tollgate-envoy'], containers: ['server'] });
      assert.deepEqual(p.spec!.initContainers!.map((c) => c.restartPolicy), ['Always', 'Always']);
      assert.ok(p.metadata!.annotations!['tollgate.dev/injected']);
      // What etcd stored, not only what the create call answered.
      const stored = await core.readNamespacedPod({ namespace: GOVERNED, name: 'governed' });
      assert.deepEqual(names(stored).init, ['tollgate-authz', 'tollgate-envoy']);
      assert.equal(stored.spec!.initContainers![1]!.ports!.find((x) => x.name === 'tollgate-mcp')!.containerPort, 10000);
      // The pod body names no namespace: authz's budget namespace is the one the API server put
      // in the admission request.
      const args = stored.spec!.initContainers![0]!.args!;
      assert.deepEqual(args.slice(args.indexOf('--budget-namespace')), ['--budget-namespace', GOVERNED]);
    });

    it('a pod in an unlabelled namespace, or opted out by annotation or label, gets nothing', async () => {
      const plain = await core.createNamespacedPod({ namespace: PLAIN, body: pod('plain') });
      assert.deepEqual(names(plain), { init: [], containers: ['server'] });
      const byAnnotation = await core.createNamespacedPod({ namespace: GOVERNED, body: pod('opt-out-annotation', { annotations: { 'tollgate.dev/inject': 'false' } }) });
      assert.deepEqual(names(byAnnotation), { init: [], containers: ['server'] });
      const byLabel = await core.createNamespacedPod({ namespace: GOVERNED, body: pod('opt-out-label', { labels: { 'tollgate.dev/inject': 'false' } }) });
      assert.deepEqual(names(byLabel), { init: [], containers: ['server'] });
    });

    it('a pod that cannot be governed as written is refused with what to change', async () => {
      const msg = await rejected(core.createNamespacedPod({ namespace: GOVERNED, body: pod('no-port', { ports: false }) }));
      assert.match(msg, /admission webhook "sidecar-injector\.tollgate\.dev" denied the request: tollgate: pod k8s-governed\/no-port: no container declares a TCP port/);
    });

    it('the webhook setting --sidecar-mode containers gives plain sidecar containers', async () => {
      await webhook!.close();
      await startWebhook('containers');
      const p = await core.createNamespacedPod({ namespace: GOVERNED, body: pod('containers-mode') });
      assert.deepEqual(names(p), { init: [], containers: ['server', 'tollgate-authz', 'tollgate-envoy'] });
      assert.ok(p.spec!.containers.every((c) => c.restartPolicy === undefined));
    });

    it('webhook down: creation is refused in labelled namespaces only', async () => {
      await webhook!.close();
      webhook = null;
      const msg = await rejected(core.createNamespacedPod({ namespace: GOVERNED, body: pod('while-down') }));
      assert.match(msg, /failed calling webhook "sidecar-injector\.tollgate\.dev"/);
      const plain = await core.createNamespacedPod({ namespace: PLAIN, body: pod('plain-while-down') });
      assert.deepEqual(names(plain).init, []);
      // The label opt-out keeps the API server from calling the webhook at all.
      const optedOut = await core.createNamespacedPod({ namespace: GOVERNED, body: pod('label-while-down', { labels: { 'tollgate.dev/inject': 'false' } }) });
      assert.deepEqual(names(optedOut).init, []);
      await startWebhook();
      const back = await core.createNamespacedPod({ namespace: GOVERNED, body: pod('after-restart') });
      assert.deepEqual(names(back).init, ['tollgate-authz', 'tollgate-envoy']);
    });
  });
});
