import { strict as assert } from 'node:assert';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { clusterNatsAuthorization, natsServerIdentity } from '../../../src/k8s/nats-cluster.js';
import { GATEWAY_PORT, regionNatsConf } from '../../../src/k8s/nats-regions.js';
import { serverSideApply, type ObjectRef } from '../../../src/operator/kube-rest.js';
import { runTollgate } from '../../support/cli.js';
import { applyAll, kubeTool, sharedKubeCluster } from '../../support/kube-cluster.js';
import {
  CHART, findObject as find, helmTemplate, kustomizeBuild, objectId as id, runTool, withoutToolLabels, type RenderedObject as Obj,
} from '../../support/manifest-render.js';
import { startShippedRegions, type LoopbackRegions } from '../../support/nats-gateways.js';

/**
 * Multi-region with the Helm chart (issue 20): one release per region with nats.region and the
 * gateway values. Each release renders what the kustomize overlay of that region builds, its
 * nats.conf is the chart's own one-region config as src/k8s/nats-regions.ts turns it into a
 * region's, two releases' configs run by real nats-servers on loopback join over TLS gateways that
 * refuse a component's certificate, and a release without the values renders no gateway at all.
 */

interface Region { region: string; advertise: string; gateways: { name: string; urls: string[] }[]; homeRegion: string }

const lb = (r: string): string => `nats-gateway.${r}.example.com:${GATEWAY_PORT}`;
const overlayValues = (r: string, other: string): Region => ({ region: r, advertise: lb(r), gateways: [{ name: other, urls: [`nats://${lb(other)}`] }], homeRegion: 'east' });
const args = (o: Obj): string[] => (o.spec as { template: { spec: { containers: { args: string[] }[] } } }).template.spec.containers[0]!.args;
const ports = (o: Obj): { name: string; containerPort: number }[] => (o.spec as { template: { spec: { containers: { ports: { name: string; containerPort: number }[] }[] } } }).template.spec.containers[0]!.ports;

describe('Helm chart: multi-region (nats.region, gateways) with the real helm', function () {
  this.timeout(120_000);
  let work: string;
  let regions: LoopbackRegions | undefined;

  before(() => { work = mkdtempSync(join(tmpdir(), 'tollgate-helm-regions-')); });
  after(async () => {
    await regions?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** A values file for one region (lists are clumsy with --set), plus any other flags. */
  const valuesFile = (name: string, nats: Record<string, unknown>): string => {
    const f = join(work, `${name}.values.yaml`);
    writeFileSync(f, stringify({ nats }));
    return f;
  };
  const region = (r: Region, ...extra: string[]): Promise<Obj[]> => helmTemplate('-f', valuesFile(r.region, {
    region: r.region, gatewayAdvertise: r.advertise, gateways: r.gateways, homeRegion: r.homeRegion,
  }), ...extra);

  it('without region values: no gateway block, port, Service, NetworkPolicy rule or --region', async () => {
    const objs = await helmTemplate();
    const conf = find(objs, 'ConfigMap', 'tollgate-nats').data!['nats.conf']!;
    assert.doesNotMatch(conf, /gateway/);
    assert.match(conf, /^ {2}name: tollgate$/m, 'the one-region cluster keeps its name');
    assert.ok(!objs.some((o) => o.metadata.name === 'tollgate-nats-gateway'));
    assert.deepEqual(ports(find(objs, 'StatefulSet', 'tollgate-nats')).map((p) => p.name), ['client', 'cluster', 'monitor']);
    assert.ok(!JSON.stringify(find(objs, 'NetworkPolicy', 'tollgate-nats').spec).includes('7222'));
    assert.ok(!args(find(objs, 'Deployment', 'tollgate-controlplane')).includes('--region'));
    // And every object is what kustomize builds from manifests/base, as before the values existed.
    const base = new Map((await kustomizeBuild(resolve('manifests', 'base'))).filter((o) => o.kind !== 'Namespace').map((o) => [id(o), withoutToolLabels(o)]));
    const helm = new Map(objs.map((o) => [id(o), withoutToolLabels(o)]));
    assert.deepEqual([...helm.keys()].sort(), [...base.keys()].sort());
    for (const [key, o] of base) assert.deepEqual(helm.get(key), o, key);
  });

  it('east and west releases render exactly what the kustomize overlays multi-region/east and west build', async () => {
    for (const [r, other] of [['east', 'west'], ['west', 'east']] as const) {
      const helm = new Map((await region(overlayValues(r, other))).map((o) => [id(o), withoutToolLabels(o)]));
      const kust = new Map((await kustomizeBuild(resolve('manifests', 'overlays', 'multi-region', r))).filter((o) => o.kind !== 'Namespace').map((o) => [id(o), withoutToolLabels(o)]));
      assert.deepEqual([...helm.keys()].sort(), [...kust.keys()].sort(), r);
      for (const [key, o] of kust) assert.deepEqual(helm.get(key), o, `${r}: ${key}`);
    }
  });

  it('its nats.conf is the chart\'s one-region config turned into a region\'s, in any namespace, trust domain and size', async () => {
    const site = { namespace: 'mesh', trustDomain: 'example.org' };
    const common = ['--namespace', site.namespace, '--set', 'nats.replicas=5', '--set', `nats.trustDomain=${site.trustDomain}`];
    const one = find(await helmTemplate(...common), 'ConfigMap', 'tollgate-nats').data!;
    const r: Region = {
      region: 'central', advertise: 'gw.central.example.net:443', homeRegion: 'west',
      gateways: [{ name: 'east', urls: ['nats://gw-a.east.example.net:7222', 'nats://gw-b.east.example.net:7222'] }, { name: 'west', urls: ['nats://gw.west.example.net:7222'] }],
    };
    const objs = await region(r, ...common, '--set', 'nats.gatewayService.type=NodePort', '--set', 'nats.gatewayAllowedCIDRs={10.1.0.0/16,192.168.7.0/24}',
      '--set', 'nats.gatewayService.annotations.example\\.com/internal=true');
    const cm = find(objs, 'ConfigMap', 'tollgate-nats').data!;
    assert.equal(cm['nats.conf'], regionNatsConf(one['nats.conf']!, { region: r.region, advertise: r.advertise, peers: r.gateways, serverIdentity: natsServerIdentity(site) }));
    assert.equal(cm['authorization.conf'], one['authorization.conf'], 'the users are the one-region release\'s');
    const svc = find(objs, 'Service', 'tollgate-nats-gateway');
    assert.equal(svc.spec!.type, 'NodePort');
    assert.deepEqual(svc.metadata.annotations, { 'example.com/internal': 'true' });
    const rule = (find(objs, 'NetworkPolicy', 'tollgate-nats').spec!.ingress as { from: { ipBlock?: { cidr: string } }[]; ports: { port: number }[] }[]).find((i) => i.ports.some((p) => p.port === GATEWAY_PORT))!;
    assert.deepEqual(rule.from.map((f) => f.ipBlock?.cidr), ['10.1.0.0/16', '192.168.7.0/24']);
    assert.deepEqual(args(find(objs, 'Deployment', 'tollgate-controlplane')).slice(-2), ['--region', 'west']);
  });

  it('nats.budgetRegions: the control plane creates a usage bucket per region, and every NATS user has the rights on it the code grants', async () => {
    const site = { namespace: 'mesh', trustDomain: 'example.org' };
    const objs = await helmTemplate('--namespace', site.namespace, '--set', `nats.trustDomain=${site.trustDomain}`, '-f', valuesFile('budget-regions', {
      region: 'east', gatewayAdvertise: lb('east'), gateways: [{ name: 'west', urls: [`nats://${lb('west')}`] }], homeRegion: 'east',
      budgetRegions: ['west', 'east'], sidecarNamespaces: ['team-a'],
    }));
    const cp = args(find(objs, 'Deployment', 'tollgate-controlplane'));
    assert.deepEqual(cp.slice(-4), ['--region', 'east', '--budget-regions', 'west,east']);
    const auth = find(objs, 'ConfigMap', 'tollgate-nats').data!['authorization.conf']!;
    // What src/nats/permissions.ts grants (test/integration/nats/multi-region.test.ts runs those
    // rights against real servers), for the mesh's components and the team-a sidecars alike.
    assert.equal(auth, clusterNatsAuthorization({ ...site, budgetRegions: ['west', 'east'] }, ['team-a']));
    assert.match(auth, /"\$KV\.tollgate_budgets_west\.w\.team-a\.\*\.\*"/);
    // Without the value, the users are the one-region release's: no regional bucket anywhere.
    const plain = find(await region(overlayValues('east', 'west'), '--namespace', site.namespace, '--set', `nats.trustDomain=${site.trustDomain}`), 'ConfigMap', 'tollgate-nats').data!['authorization.conf']!;
    assert.equal(plain, clusterNatsAuthorization(site));
    assert.doesNotMatch(plain, /tollgate_budgets_/);
  });

  it('two releases\' configs, one server per region on loopback, join over TLS gateways; a client certificate cannot open one', async () => {
    // Another namespace and trust domain than the overlays', so the identities come from the values.
    const site = { namespace: 'mesh', trustDomain: 'example.org' };
    const shipped = [];
    for (const [r, other] of [['east', 'west'], ['west', 'east']] as const) {
      const cm = find(await region(overlayValues(r, other), '--namespace', site.namespace, '--set', `nats.trustDomain=${site.trustDomain}`), 'ConfigMap', 'tollgate-nats').data!;
      shipped.push({ name: r, natsConf: cm['nats.conf']!, authorizationConf: cm['authorization.conf']! });
    }
    regions = await startShippedRegions(work, site, shipped, lb);
    await regions.joined();
    await regions.assertRogueRefused('west');
  });

  it('the notes helm install prints give the nats-certs command that puts every region\'s gateway name on the server certificate', async () => {
    // NOTES are rendered by install, not template. Even a client dry run checks who owns the
    // cluster-wide objects other tests applied to the shared API server; --take-ownership skips
    // that check, and a dry run changes nothing.
    const cluster = await sharedKubeCluster();
    const r: Region = {
      region: 'east', advertise: lb('east'), homeRegion: 'east',
      gateways: [{ name: 'west', urls: [`nats://${lb('west')}`] }, { name: 'south', urls: ['nats://gw-a.south.example.net:7222', 'nats://gw-b.south.example.net:7222'] }],
    };
    const install = await runTool(kubeTool('helm'), ['install', 'tollgate', CHART, '--dry-run=client', '--take-ownership', '--kubeconfig', cluster.kubeconfigPath, '--namespace', 'mesh',
      // The test API server is built without a version stamp (v0.0.0), which the native-sidecar check cannot compare.
      '--set', 'sidecarMode=containers', '--set', 'nats.trustDomain=example.org', '-f', valuesFile('notes', { region: r.region, gatewayAdvertise: r.advertise, gateways: r.gateways, homeRegion: r.homeRegion })]);
    assert.equal(install.code, 0, install.stderr);
    const notes = install.stdout.slice(install.stdout.indexOf('NOTES:'));
    assert.ok(notes.startsWith('NOTES:'), install.stdout.slice(0, 500));
    assert.match(notes, /region east: the same CA and trust domain in every region; the streams live in east/);
    // The printed command: one line, the --gateway-dns flags at its end.
    const lines = notes.split('\n');
    const at = lines.findIndex((l) => l.trim().startsWith('tollgate controlplane nats-certs'));
    assert.ok(at >= 0, notes);
    const command = lines[at]!.trim().split(/\s+/);
    const dns = command.flatMap((w, i) => (command[i - 1] === '--gateway-dns' ? [w] : []));
    assert.deepEqual(dns.sort(), ['gw-a.south.example.net', 'gw-b.south.example.net', 'nats-gateway.east.example.com', 'nats-gateway.west.example.com']);
    // Run it as a user would (paths moved into the test's directory): the certificate carries them all.
    const out = join(work, 'notes-out');
    const args = command.slice(1).map((w, i, all) => (all[i - 1] === '--ca-dir' ? join(work, 'notes-ca') : all[i - 1] === '--out' ? out : w));
    const run = await runTollgate(args);
    assert.equal(run.code, 0, run.stderr);
    const server = new X509Certificate(readFileSync(join(out, 'tollgate-nats-tls', 'tls.crt')));
    for (const n of dns) assert.ok(server.subjectAltName!.split(', ').includes(`DNS:${n}`), `${n} on the server certificate: ${server.subjectAltName}`);
    assert.match(server.subjectAltName!, /URI:spiffe:\/\/example\.org\/ns\/mesh\/sa\/tollgate-nats/);
  });

  it('refuses region values that cannot work, saying what to set', async () => {
    const fails = async (values: Record<string, unknown>, message: RegExp, ...extra: string[]): Promise<void> => {
      const r = await runTool(kubeTool('helm'), ['template', 'tollgate', CHART, '--kube-version', '1.34.0', '-f', valuesFile('bad', values), ...extra]);
      assert.notEqual(r.code, 0, `accepted ${JSON.stringify(values)}`);
      assert.match(r.stderr, message);
    };
    const ok = { region: 'east', gatewayAdvertise: lb('east'), gateways: [{ name: 'west', urls: [`nats://${lb('west')}`] }], homeRegion: 'east' };
    await fails({ gateways: ok.gateways }, /nats\.gatewayAdvertise, nats\.gateways, nats\.homeRegion and nats\.budgetRegions need nats\.region/);
    await fails({ budgetRegions: ['east'] }, /nats\.budgetRegions need nats\.region/);
    await fails({ ...ok, budgetRegions: ['east', 'north'] }, /nats\.budgetRegions: "north" is not a region of this mesh \(nats\.region or one of nats\.gateways: east, west\)/);
    await fails({ ...ok, budgetRegions: ['west', 'west'] }, /nats\.budgetRegions: region west is listed twice/);
    await fails({ ...ok, budgetRegions: 'east' }, /nats\.budgetRegions must be a list of region names/);
    await fails({ ...ok, region: 'east.1' }, /nats\.region "east\.1" is not a region name/);
    await fails({ ...ok, gatewayAdvertise: '' }, /nats\.gatewayAdvertise "" must be HOST:PORT/);
    await fails({ ...ok, gateways: [] }, /nats\.gateways must list every other region/);
    await fails({ ...ok, gateways: [{ name: 'east', urls: ['nats://x:7222'] }] }, /region east is listed twice, or is this release's own region/);
    await fails({ ...ok, gateways: [{ name: 'west' }] }, /region west needs urls/);
    await fails({ ...ok, gateways: [{ name: 'west', urls: ['tls://x:7222'] }] }, /url "tls:\/\/x:7222" is not nats:\/\/HOST:PORT/);
    await fails({ ...ok, gateways: [{ name: 'west', urls: ['nats://10.0.0.1:7222'] }] }, /url "nats:\/\/10\.0\.0\.1:7222" is not nats:\/\/HOST:PORT with HOST a DNS name/);
    await fails({ ...ok, gatewayAdvertise: '10.0.0.2:7222' }, /nats\.gatewayAdvertise "10\.0\.0\.2:7222" must be HOST:PORT, HOST the DNS name/);
    await fails({ ...ok, homeRegion: '' }, /nats\.homeRegion "" must be nats\.region or one of nats\.gateways \(east, west\)/);
    await fails({ ...ok, gatewayAllowedCIDRs: ['everyone'] }, /"everyone" is not a CIDR/);
    await fails({ ...ok, gatewayService: { type: 'External' } }, /nats\.gatewayService\.type must be LoadBalancer, NodePort or ClusterIP/);
    await fails({ ...ok, replicas: 1 }, /set nats\.replicas to 3 or 5/);
    const lint = await runTool(kubeTool('helm'), ['lint', '--strict', CHART, '--kube-version', '1.34.0', '-f', valuesFile('lint', ok)]);
    assert.equal(lint.code, 0, lint.stdout + lint.stderr);
  });

  it('a region\'s objects are accepted by a real kube-apiserver (server-side dry run)', async () => {
    const cluster = await sharedKubeCluster();
    await applyAll(cluster.kc, [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'helm-region' } }]);
    const objs = await region(overlayValues('west', 'east'), '--namespace', 'helm-region');
    await applyAll(cluster.kc, objs.filter((o) => o.kind === 'CustomResourceDefinition'));
    for (const o of objs.filter((x) => x.kind !== 'CustomResourceDefinition')) {
      await serverSideApply(cluster.kc, o as unknown as ObjectRef, 'tollgate-tests', { dryRun: true }).catch((e: Error) => assert.fail(`${id(o)}: ${e.message}`));
    }
  });
});
