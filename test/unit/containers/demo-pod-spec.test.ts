import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { loadConfigFile } from '../../../src/authz/config.js';
import { authzConfigMap, demoServerPod, plainSidecars, playablePod, POD_PORTS, resolveNamespaceFieldRefs } from '../../../src/containers/demo-pod-spec.js';
import { injectYaml } from '../../../src/k8s/yaml-docs.js';

type Obj = Record<string, unknown>;
interface C { name: string; restartPolicy?: string; ports?: Obj[]; env?: Obj[] }

const injected = (): string => injectYaml(demoServerPod('img:1', 'demo', 'mcp-demo'), {
  envoyImage: 'envoy:1', authzImage: 'img:1', controlPlane: { host: '127.0.0.1', port: POD_PORTS.xds },
}).output;

const opts = { podName: 'p1', image: 'img:1', hostPorts: { mcp: 25001, health: 25002, nats: 25003 }, secretsDir: '/tmp/s' };

describe('podman-playable pod from injector output', () => {
  it('turns native sidecars into plain containers ahead of the server and keeps real init containers', () => {
    const pod = {
      spec: {
        initContainers: [{ name: 'setup' }, { name: 'tollgate-authz', restartPolicy: 'Always' }, { name: 'tollgate-envoy', restartPolicy: 'Always' }],
        containers: [{ name: 'server' }],
      },
    };
    const spec = plainSidecars(pod).spec as { initContainers: C[]; containers: C[] };
    assert.deepEqual(spec.containers.map((c) => c.name), ['tollgate-authz', 'tollgate-envoy', 'server']);
    assert.ok(spec.containers.every((c) => c.restartPolicy === undefined));
    assert.deepEqual(spec.initContainers.map((c) => c.name), ['setup']);
  });

  it('writes the namespace in where podman refuses the metadata.namespace fieldRef', () => {
    const pod = { spec: { containers: [{ name: 'a', env: [
      { name: 'NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      { name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    ] }] } };
    resolveNamespaceFieldRefs(pod, 'mcp-demo');
    assert.deepEqual(pod.spec.containers[0]!.env, [
      { name: 'NS', value: 'mcp-demo' },
      { name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    ]);
  });

  it('publishes Envoy and NATS on the host loopback only, and adds NATS, control plane and issuer', () => {
    const pod = parse(playablePod(injected(), opts)) as { metadata: Obj; spec: { containers: C[]; initContainers?: C[]; volumes: Obj[] } };
    assert.equal(pod.metadata.name, 'p1');
    assert.equal(pod.spec.initContainers, undefined);
    assert.deepEqual(pod.spec.containers.map((c) => c.name), ['tollgate-authz', 'tollgate-envoy', 'demo', 'nats', 'controlplane', 'issuer']);
    const published = pod.spec.containers.flatMap((c) => (c.ports ?? []).filter((p) => p.hostPort !== undefined).map((p) => [c.name, p.containerPort, p.hostPort, p.hostIP]));
    assert.deepEqual(published, [
      ['tollgate-envoy', POD_PORTS.mcp, 25001, '127.0.0.1'],
      ['tollgate-envoy', POD_PORTS.health, 25002, '127.0.0.1'],
      ['nats', POD_PORTS.nats, 25003, '127.0.0.1'],
    ]);
    assert.doesNotMatch(JSON.stringify(pod), /metadata\.namespace/);
    assert.deepEqual(pod.spec.volumes.find((v) => v.name === 'secrets'), { name: 'secrets', hostPath: { path: '/tmp/s', type: 'Directory' } });
    // The optional NATS credential Secret, absent here, is what Kubernetes would mount: an empty directory.
    assert.deepEqual(pod.spec.volumes.find((v) => v.name === 'tollgate-nats-authz'), { name: 'tollgate-nats-authz', emptyDir: {} });
  });

  it('drops the certificate fetchers (init and renewer) in both sidecar modes: the demo mounts an issued certificate', () => {
    for (const sidecarMode of ['native', 'containers'] as const) {
      const withCerts = injectYaml(demoServerPod('img:1', 'demo', 'mcp-demo'), {
        envoyImage: 'envoy:1', authzImage: 'img:1', controlPlane: { host: '127.0.0.1', port: POD_PORTS.xds }, sidecarMode,
        workloadCerts: { url: 'https://127.0.0.1:1/v1/certificates' },
      }).output;
      assert.match(withCerts, /tollgate-identity-renew/);
      const pod = parse(playablePod(withCerts, opts)) as { spec: { containers: C[]; initContainers?: C[] } };
      assert.equal(pod.spec.initContainers, undefined, sidecarMode);
      assert.deepEqual(pod.spec.containers.map((c) => c.name).sort(), ['controlplane', 'demo', 'issuer', 'nats', 'tollgate-authz', 'tollgate-envoy'], sidecarMode);
    }
  });

  it('says what is wrong with input it cannot use', () => {
    assert.throws(() => playablePod('kind: ConfigMap\n', opts), /expected one Pod in the injected YAML, found 0/);
    assert.throws(() => playablePod(demoServerPod('img:1', 'demo', 'mcp-demo'), opts), /no tollgate-envoy container/);
  });

  it('configures authz for the pod: loopback listener, signed bundles and decision records over NATS', () => {
    const cm = parse(authzConfigMap('mcp-demo', 'http://aud/mcp', 'PEM')) as { metadata: Obj; data: Record<string, string> };
    assert.deepEqual(cm.metadata, { name: 'tollgate-authz', namespace: 'mcp-demo' });
    assert.equal(cm.data['verification.pem'], 'PEM');
    const authz = parse(cm.data['authz.yaml']!) as Obj;
    assert.equal(authz.listen, `127.0.0.1:${POD_PORTS.authz}`);
    assert.deepEqual(authz.policy, { nats_url: `nats://127.0.0.1:${POD_PORTS.nats}`, verification_key: '/etc/tollgate/verification.pem' });
    assert.equal(authz.decision_log_nats_url, `nats://127.0.0.1:${POD_PORTS.nats}`);
  });

  it('writes an authz.yaml that authz itself accepts', () => {
    const cm = parse(authzConfigMap('mcp-demo', 'http://aud/mcp', 'PEM')) as { data: Record<string, string> };
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-demo-authz-'));
    try {
      const file = join(dir, 'authz.yaml');
      writeFileSync(file, cm.data['authz.yaml']!);
      const c = loadConfigFile(file);
      assert.deepEqual(c.policy.nats, { url: `nats://127.0.0.1:${POD_PORTS.nats}`, verificationKey: '/etc/tollgate/verification.pem' });
      assert.deepEqual(c.metricsListen, { host: '127.0.0.1', port: 9464 });
      assert.equal(c.decisionLogReplicate, true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
