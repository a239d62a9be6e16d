import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { CLUSTER_NATS_CLIENTS, clusterNatsAuthorization, natsSeedUrls, natsServerDnsNames } from '../../../src/k8s/nats-cluster.js';
import { loopbackNatsArgs, loopbackNatsConf, type LoopbackMember } from '../../support/nats-loopback-conf.js';

/** manifests/base: the NATS cluster objects and how every client reaches it. */

type Obj = { kind: string; metadata: { name: string }; spec?: Record<string, unknown>; data?: Record<string, string> };
const load = (file: string): Obj[] => parseAllDocuments(readFileSync(resolve('manifests', 'base', file), 'utf8')).map((d) => d.toJS() as Obj).filter((o) => o?.kind);
const find = (objs: Obj[], kind: string, name: string): Obj => {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(o, `${kind} ${name}`);
  return o;
};
interface PodSpec { affinity?: { podAntiAffinity?: Record<string, unknown> }; containers: { args?: string[]; ports?: { name: string; containerPort: number }[] }[]; volumes?: { name: string; secret?: { secretName: string } }[] }
const podSpec = (o: Obj): PodSpec => (o.spec as { template: { spec: PodSpec } }).template.spec;

describe('manifests/base: NATS clustered', () => {
  const nats = load('nats.yaml');

  it('runs three servers with JetStream volumes, spread over nodes, one disruption at a time', () => {
    const sts = find(nats, 'StatefulSet', 'tollgate-nats');
    assert.equal(sts.spec!.replicas, 3);
    assert.equal(sts.spec!.serviceName, 'tollgate-nats-headless');
    const pod = podSpec(sts);
    const anti = pod.affinity?.podAntiAffinity as { preferredDuringSchedulingIgnoredDuringExecution?: { podAffinityTerm: { topologyKey: string } }[] };
    assert.equal(anti.preferredDuringSchedulingIgnoredDuringExecution?.[0]?.podAffinityTerm.topologyKey, 'kubernetes.io/hostname');
    assert.deepEqual(pod.containers[0]!.ports!.map((p) => p.containerPort), [4222, 6222, 8222]);
    // Measured: a lone server of the three answers 200 here and 503 on plain /healthz (no meta leader).
    assert.equal((pod.containers[0] as { startupProbe?: { httpGet: { path: string } } }).startupProbe?.httpGet.path, '/healthz?js-enabled-only=true');
    assert.equal((sts.spec!.volumeClaimTemplates as { metadata: { name: string } }[])[0]!.metadata.name, 'data');
    assert.ok(pod.volumes!.some((v) => v.secret?.secretName === 'tollgate-nats-tls'));
    assert.equal(find(nats, 'PodDisruptionBudget', 'tollgate-nats').spec!.maxUnavailable, 1);
    assert.ok((find(nats, 'Service', 'tollgate-nats-headless').spec!.ports as { port: number }[]).some((p) => p.port === 6222));
    // Routes pass the NetworkPolicy from NATS pods only.
    const ingress = find(load('networkpolicies.yaml'), 'NetworkPolicy', 'tollgate-nats').spec!.ingress as { from: { podSelector?: { matchLabels: Record<string, string> } }[]; ports: { port: number }[] }[];
    const routes = ingress.find((r) => r.ports.some((p) => p.port === 6222));
    assert.deepEqual(routes?.from, [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'tollgate-nats' } } }]);
  });

  it('requires TLS with mapped client certificates, routes to every server over TLS, and only the servers\' identity on routes', () => {
    const conf = find(nats, 'ConfigMap', 'tollgate-nats').data!['nats.conf']!;
    assert.match(conf, /^tls \{[^}]*verify_and_map: true/m);
    assert.match(conf, /^include authorization\.conf$/m);
    assert.deepEqual(conf.match(/nats-route:\/\/\S+/g), [0, 1, 2].map((i) => `nats-route://tollgate-nats-${i}.tollgate-nats-headless.tollgate-system.svc:6222`));
    assert.match(conf, /cluster \{[\s\S]*tls \{[^}]*verify_and_map: true[\s\S]*user: "spiffe:\/\/tollgate\.local\/ns\/tollgate-system\/sa\/tollgate-nats"/);
    // Every route and seed name is covered by the server certificate's names.
    const names = natsServerDnsNames('tollgate-system');
    assert.ok(names.includes('*.tollgate-nats-headless.tollgate-system.svc'));
  });

  it('ships authorization.conf exactly as src/nats/permissions.ts grants the mesh components', () => {
    const shipped = find(nats, 'ConfigMap', 'tollgate-nats').data!['authorization.conf'];
    assert.equal(shipped, clusterNatsAuthorization({ namespace: 'tollgate-system', trustDomain: 'tollgate.local' }),
      'authorization.conf in manifests/base/nats.yaml differs from src/nats/permissions.ts: paste OUT/authorization.conf of `tollgate controlplane nats-certs --out OUT` into it, and into the chart\'s nats.yaml with tollgate-system and tollgate.local templated');
  });

  it('gives the control plane and the operator every seed and their own credential; the control plane creates R3 streams', () => {
    const seeds = natsSeedUrls('tollgate-system', 3).join(',');
    for (const [file, name, secret] of [['controlplane.yaml', 'tollgate-controlplane', 'tollgate-nats-controlplane'], ['operator.yaml', 'tollgate-operator', 'tollgate-nats-operator']] as const) {
      const pod = podSpec(find(load(file), 'Deployment', name));
      const args = pod.containers[0]!.args!;
      const flag = (f: string): string | undefined => (args.includes(f) ? args[args.indexOf(f) + 1] : undefined);
      assert.equal(flag('--nats'), seeds, name);
      assert.equal(flag('--nats-cert'), '/etc/tollgate/nats/tls.crt', name);
      assert.ok(pod.volumes!.some((v) => v.secret?.secretName === secret), `${name} mounts ${secret}`);
      assert.ok(CLUSTER_NATS_CLIENTS.some((c) => c.secret === secret && c.serviceAccount === name));
      if (name === 'tollgate-controlplane') assert.equal(flag('--replicas'), '3');
    }
    const authz = podSpec(find(load('authz.yaml'), 'Deployment', 'tollgate-authz'));
    assert.ok(authz.volumes!.some((v) => v.secret?.secretName === 'tollgate-nats-authz'));
  });

  it('natsSeedUrls refuses a replica count that is not a whole number', () => {
    assert.throws(() => natsSeedUrls('x', 0), /at least 1/);
    assert.throws(() => natsSeedUrls('x', 1.5), /whole number/);
  });
});

describe('loopbackNatsConf (test support: the shipped nats.conf on loopback)', () => {
  const conf = find(load('nats.yaml'), 'ConfigMap', 'tollgate-nats').data!['nats.conf']!;
  const m: LoopbackMember = { clientPort: 14222, httpPort: 18222, routePort: 16222, routePorts: [16222, 16223, 16224], storeDir: '/tmp/n0/js', pidFile: '/tmp/n0/nats.pid', tlsDir: '/tmp/tls' };

  it('moves ports, routes and paths to loopback and leaves the rest as shipped', () => {
    const out = loopbackNatsConf(conf, m);
    assert.match(out, /^listen: "127\.0\.0\.1:14222"$/m);
    assert.match(out, /^http: "127\.0\.0\.1:18222"$/m);
    assert.match(out, /^ {2}listen: "127\.0\.0\.1:16222"$/m);
    assert.deepEqual(out.match(/nats-route:\/\/\S+/g), ['nats-route://127.0.0.1:16222', 'nats-route://127.0.0.1:16223', 'nats-route://127.0.0.1:16224']);
    assert.ok(!out.includes('/etc/nats-tls/') && !out.includes('/data/jetstream') && !out.includes('svc'));
    assert.equal(out.match(/\/tmp\/tls\/ca\.crt/g)?.length, 2);
    // Everything that is not a port, route or path is unchanged: TLS, users, cluster authorization.
    const strip = (s: string): string => s.split('\n').filter((l) => !/port|listen|http|route:|store_dir|pid_file|_file:/.test(l)).join('\n');
    assert.equal(strip(out), strip(conf));
  });

  it('fails loudly when the shipped config no longer has the shape it rewrites', () => {
    assert.throws(() => loopbackNatsConf(conf.replace('port: 4222', 'port: 4223'), m), /expected one client port 4222, found 0/);
    assert.throws(() => loopbackNatsConf(conf, { ...m, routePorts: [1, 2] }), /tollgate-nats-2, which has no loopback port/);
    assert.throws(() => loopbackNatsConf(conf, { ...m, routePorts: [1, 2, 3, 4] }), /expected 4 routes, found 3/);
    assert.throws(() => loopbackNatsConf(conf, { ...m, tlsDir: '/tmp/a b' }), /characters a bare nats.conf value cannot hold/);
    assert.throws(() => loopbackNatsConf(conf, { ...m, routePorts: [] }), /a cluster block, but no route ports given/);
  });
});

describe('loopbackNatsArgs (test support: a manifest client\'s NATS flags on loopback)', () => {
  const args = podSpec(find(load('controlplane.yaml'), 'Deployment', 'tollgate-controlplane')).containers[0]!.args!;
  const c = { clientPorts: [1, 2, 3], ca: '/l/ca.crt', cert: '/l/tls.crt', key: '/l/tls.key' };

  it('maps every seed to its loopback port and the mounted credential to local files', () => {
    assert.deepEqual(loopbackNatsArgs(args, c), ['--nats', 'tls://127.0.0.1:1,tls://127.0.0.1:2,tls://127.0.0.1:3',
      '--nats-ca', '/l/ca.crt', '--nats-cert', '/l/tls.crt', '--nats-key', '/l/tls.key', '--replicas', '3']);
  });

  it('refuses seeds that are not the StatefulSet pods, a missing server, and files other than the mount', () => {
    const swap = (from: string, to: string): string[] => args.map((a) => a.replace(from, to));
    assert.throws(() => loopbackNatsArgs(swap('tls://tollgate-nats-0.', 'nats://tollgate-nats-0.'), c), /is not a tollgate-nats pod's tls:\/\/ URL/);
    assert.throws(() => loopbackNatsArgs(args, { ...c, clientPorts: [1, 2, 3, 4] }), /names 3 servers, the cluster has 4/);
    assert.throws(() => loopbackNatsArgs(swap('/etc/tollgate/nats/tls.key', '/tmp/key.pem'), c), /--nats-key \/tmp\/key.pem is not the mounted tls.key/);
    assert.throws(() => loopbackNatsArgs(args.filter((a) => a !== '--nats-ca'), c), /no --nats-ca|not the mounted/);
  });
});
