import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { natsServerIdentity } from '../../../src/k8s/nats-cluster.js';
import { GATEWAY_PORT, regionNatsConf } from '../../../src/k8s/nats-regions.js';
import { findObject as find, kustomizeBuild as build, type RenderedObject as Obj } from '../../support/manifest-render.js';
import { startShippedRegions, type LoopbackRegions } from '../../support/nats-gateways.js';

/**
 * manifests/overlays/multi-region/{east,west} (issue 20, multi-region): kustomize builds them, each
 * region's nats.conf is the base's as src/k8s/nats-regions.ts renders it, and the two shipped
 * configs, run by real nats-servers on loopback (ports, route and gateway addresses and paths
 * moved), join over TLS gateways that admit only the NATS servers' identity.
 */

const site = { namespace: 'tollgate-system', trustDomain: 'tollgate.local' };
const REGIONS = [['east', 'west'], ['west', 'east']] as const;

describe('manifests/overlays/multi-region: two regions joined by NATS gateways', function () {
  this.timeout(90_000);
  let base: Obj[];
  const built = new Map<string, Obj[]>();
  let work: string;
  let regions: LoopbackRegions | undefined;

  before(async () => {
    base = await build(resolve('manifests', 'base'));
    for (const [r] of REGIONS) built.set(r, await build(resolve('manifests', 'overlays', 'multi-region', r)));
    work = mkdtempSync(join(tmpdir(), 'tollgate-multi-region-overlay-'));
  });
  after(async () => {
    await regions?.stop();
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
    regions = await startShippedRegions(work, site, REGIONS.map(([r]) => {
      const cm = find(built.get(r)!, 'ConfigMap', 'tollgate-nats').data!;
      return { name: r, natsConf: cm['nats.conf']!, authorizationConf: cm['authorization.conf']! };
    }), (r) => `nats-gateway.${r}.example.com:${GATEWAY_PORT}`);
    await regions.joined();
    await regions.assertRogueRefused('east');
  });
});
