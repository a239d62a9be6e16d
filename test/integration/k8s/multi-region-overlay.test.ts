import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { issueClusterNatsCertificates, natsServerIdentity } from '../../../src/k8s/nats-cluster.js';
import { GATEWAY_PORT, regionNatsConf } from '../../../src/k8s/nats-regions.js';
import { LocalPki } from '../../../src/pki/index.js';
import { freePort, waitForPort } from '../../../src/util/net.js';
import { ManagedProcess } from '../../../src/util/process.js';
import { toolPath } from '../../../src/util/tools.js';
import { kubeTool } from '../../support/kube-cluster.js';
import { loopbackNatsConf } from '../../support/nats-loopback-conf.js';

/**
 * manifests/overlays/multi-region/{east,west} (issue 20, multi-region): kustomize builds them, each
 * region's nats.conf is the base's as src/k8s/nats-regions.ts renders it, and the two shipped
 * configs, run by real nats-servers on loopback (ports, route and gateway addresses and paths
 * moved), join over TLS gateways that admit only the NATS servers' identity.
 */

type Obj = { kind: string; metadata: { name: string }; spec?: Record<string, unknown>; data?: Record<string, string> };
const site = { namespace: 'tollgate-system', trustDomain: 'tollgate.local' };
const REGIONS = [['east', 'west'], ['west', 'east']] as const;

function build(dir: string): Promise<Obj[]> {
  return new Promise((res, rej) => {
    execFile(kubeTool('kustomize'), ['build', dir], { maxBuffer: 32 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) rej(new Error(`kustomize build ${dir}: ${stderr}`));
      else res(parseAllDocuments(stdout).map((d) => d.toJS() as Obj).filter((o) => o?.kind));
    });
  });
}
const find = (objs: Obj[], kind: string, name: string): Obj => {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(o, `${kind} ${name}`);
  return o;
};

describe('manifests/overlays/multi-region: two regions joined by NATS gateways', function () {
  this.timeout(90_000);
  let base: Obj[];
  const built = new Map<string, Obj[]>();
  let work: string;
  const procs: ManagedProcess[] = [];

  before(async () => {
    base = await build(resolve('manifests', 'base'));
    for (const [r] of REGIONS) built.set(r, await build(resolve('manifests', 'overlays', 'multi-region', r)));
    work = mkdtempSync(join(tmpdir(), 'tollgate-multi-region-overlay-'));
  });
  after(async () => {
    for (const p of procs.splice(0)) await p.stop().catch(() => undefined);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('each region renames its cluster, adds a TLS gateway to the other, and exposes the gateway port', () => {
    const baseNats = find(base, 'ConfigMap', 'tollgate-nats').data!;
    for (const [r, other] of REGIONS) {
      const objs = built.get(r)!;
      const cm = find(objs, 'ConfigMap', 'tollgate-nats').data!;
      assert.equal(cm['nats.conf'], regionNatsConf(baseNats['nats.conf']!, {
        region: r, advertise: `nats-gateway.${r}.example.com:${GATEWAY_PORT}`,
        peers: [{ name: other, urls: [`nats://nats-gateway.${other}.example.com:${GATEWAY_PORT}`] }], serverIdentity: natsServerIdentity(site),
      }), `${r}/nats.conf is not what src/k8s/nats-regions.ts renders from the base`);
      assert.equal(cm['authorization.conf'], baseNats['authorization.conf'], 'the users are the base\'s');
      const ports = ((find(objs, 'StatefulSet', 'tollgate-nats').spec as { template: { spec: { containers: { ports: { name: string; containerPort: number }[] }[] } } }).template.spec.containers[0]!.ports);
      assert.deepEqual(ports.find((p) => p.name === 'gateway'), { name: 'gateway', containerPort: GATEWAY_PORT });
      assert.equal(find(objs, 'Service', 'tollgate-nats-gateway').spec!.type, 'LoadBalancer');
      const ingress = find(objs, 'NetworkPolicy', 'tollgate-nats').spec!.ingress as { ports: { port: number }[] }[];
      assert.ok(ingress.some((i) => i.ports.some((p) => p.port === GATEWAY_PORT)));
      const args = (find(objs, 'Deployment', 'tollgate-controlplane').spec as { template: { spec: { containers: { args: string[] }[] } } }).template.spec.containers[0]!.args;
      assert.deepEqual(args.slice(-2), ['--region', 'east'], 'both regions place the streams in the home region');
    }
    assert.throws(() => regionNatsConf(baseNats['nats.conf']!, { region: 'east', advertise: 'x:1', peers: [{ name: 'east', urls: [] }], serverIdentity: 'x' }), /lists itself/);
    assert.throws(() => regionNatsConf('cluster {\n}\n', { region: 'east', advertise: 'x:1', peers: [], serverIdentity: 'x' }), /expected one cluster/);
  });

  it('the shipped configs, one server per region on loopback, join over TLS gateways; a client certificate cannot open one', async () => {
    const pki = await LocalPki.open(join(work, 'pki'), site.trustDomain);
    const certs = await issueClusterNatsCertificates(pki, site, { ips: ['127.0.0.1'], dnsNames: ['localhost'] });
    const tlsDir = join(work, 'tls');
    mkdirSync(tlsDir);
    copyFileSync(certs.server.cert, join(tlsDir, 'tls.crt'));
    copyFileSync(certs.server.key, join(tlsDir, 'tls.key'));
    copyFileSync(certs.server.ca, join(tlsDir, 'ca.crt'));
    const gw = new Map<string, number>();
    for (const [r] of REGIONS) gw.set(r, await freePort());
    const http = new Map<string, number>();
    for (const [r] of REGIONS) {
      const cm = find(built.get(r)!, 'ConfigMap', 'tollgate-nats').data!;
      const [clusterPart, gatewayPart] = cm['nats.conf']!.split(/^(?=gateway \{)/m) as [string, string];
      const dir = join(work, r);
      mkdirSync(dir);
      const p = { clientPort: await freePort(), httpPort: await freePort(), routePort: await freePort() };
      http.set(r, p.httpPort);
      // Of the three routes only this server's own is on loopback: the region's cluster is one
      // server here, enough for gateways (not for JetStream quorum, which cluster.test.ts covers).
      const dead = await freePort();
      let conf = loopbackNatsConf(clusterPart, { ...p, routePorts: [p.routePort, dead, dead], storeDir: join(dir, 'js'), pidFile: join(dir, 'nats.pid'), tlsDir });
      let g = gatewayPart.split('/etc/nats-tls/').join(`${tlsDir}/`).replace(`port: ${GATEWAY_PORT}`, `listen: "127.0.0.1:${gw.get(r)}"`);
      for (const [name, port] of gw) g = g.split(`nats-gateway.${name}.example.com:${GATEWAY_PORT}`).join(`127.0.0.1:${port}`);
      conf += g;
      writeFileSync(join(dir, 'nats.conf'), conf);
      writeFileSync(join(dir, 'authorization.conf'), cm['authorization.conf']!);
      procs.push(await ManagedProcess.start(`nats-${r}`, toolPath('nats-server'), ['-c', join(dir, 'nats.conf')], {
        env: { ...process.env, POD_NAME: `tollgate-nats-0-${r}` }, ready: () => waitForPort(p.clientPort, '127.0.0.1', 20_000), timeoutMs: 30_000,
      }));
    }
    const outbound = async (r: string): Promise<string[]> => {
      const z = (await (await fetch(`http://127.0.0.1:${http.get(r)}/gatewayz`, { signal: AbortSignal.timeout(3000) })).json()) as { name: string; outbound_gateways?: Record<string, unknown> };
      assert.equal(z.name, r, 'the gateway is named after the region');
      return Object.keys(z.outbound_gateways ?? {});
    };
    const deadline = Date.now() + 30_000;
    for (;;) {
      const [e, w] = [await outbound('east'), await outbound('west')];
      if (e.includes('west') && w.includes('east')) break;
      if (Date.now() > deadline) assert.fail(`gateways not joined: east→${e.join(',')} west→${w.join(',')}`);
      await new Promise((res) => setTimeout(res, 300));
    }
    // A third "region" presenting the shared authz's identity (same CA, not the servers' one).
    const rogue = await pki.issue('rogue-gw', { commonName: 'rogue', uris: [natsServerIdentity(site).replace('tollgate-nats', 'tollgate-authz')], ips: ['127.0.0.1'], usage: 'both' });
    const dir = join(work, 'rogue');
    mkdirSync(dir);
    const port = await freePort();
    writeFileSync(join(dir, 'nats.conf'), [
      'server_name: rogue', `listen: "127.0.0.1:${port}"`,
      'gateway {', '  name: "rogue"', `  listen: "127.0.0.1:${await freePort()}"`,
      `  tls { cert_file: "${rogue.cert}", key_file: "${rogue.key}", ca_file: "${rogue.ca}", timeout: 3 }`,
      `  gateways: [ { name: "east", urls: ["nats://127.0.0.1:${gw.get('east')}"] } ]`, '}', '',
    ].join('\n'));
    const proc = await ManagedProcess.start('rogue', toolPath('nats-server'), ['-c', join(dir, 'nats.conf')], { ready: () => waitForPort(port, '127.0.0.1', 20_000) });
    procs.push(proc);
    const until = Date.now() + 20_000;
    while (!/Authorization Violation/.test(proc.output) && Date.now() < until) await new Promise((res) => setTimeout(res, 300));
    assert.match(proc.output, /Authorization Violation/);
    assert.ok(!(await outbound('east')).includes('rogue'));
  });
});
