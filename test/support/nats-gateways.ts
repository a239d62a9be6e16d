import { strict as assert } from 'node:assert';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { issueClusterNatsCertificates, natsServerIdentity } from '../../src/k8s/nats-cluster.js';
import { GATEWAY_PORT } from '../../src/k8s/nats-regions.js';
import { LocalPki } from '../../src/pki/index.js';
import { freePort, waitForPort } from '../../src/util/net.js';
import { ManagedProcess } from '../../src/util/process.js';
import { toolPath } from '../../src/util/tools.js';
import { loopbackNatsConf } from './nats-loopback-conf.js';

/**
 * The multi-region NATS configs the manifests ship (kustomize overlays, Helm with nats.region), run
 * by real nats-servers on loopback: one server per region, ports, route and gateway addresses and
 * paths moved, nothing else changed. Shared by the overlay and the Helm tests, so both prove the
 * same things: the regions join over TLS gateways, and a peer with a component's certificate from
 * the same CA is refused.
 */

export interface ShippedRegion {
  name: string;
  /** The shipped nats.conf: the cluster block, then the gateway block. */
  natsConf: string;
  authorizationConf: string;
}

export interface Site { namespace: string; trustDomain: string }

export interface LoopbackRegions {
  /** The regions a region's server has an outbound gateway to (its /gatewayz). */
  outbound(region: string): Promise<string[]>;
  /** Waits until every region has an outbound gateway to every other one, or fails saying which are missing. */
  joined(timeoutMs?: number): Promise<void>;
  /** A server presenting the shared authz's identity (same CA) dials `region`'s gateway and is refused. */
  assertRogueRefused(region: string): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts one server per region from the shipped configs. `gatewayHost(r)` is the host:7222 the
 * configs use for region r's gateway (its advertise address and the other regions' URLs for it).
 */
export async function startShippedRegions(work: string, site: Site, regions: ShippedRegion[], gatewayHost: (region: string) => string): Promise<LoopbackRegions> {
  const pki = await LocalPki.open(join(work, 'pki'), site.trustDomain);
  const certs = await issueClusterNatsCertificates(pki, site, { ips: ['127.0.0.1'], dnsNames: ['localhost'] });
  const tlsDir = join(work, 'tls');
  mkdirSync(tlsDir, { recursive: true });
  copyFileSync(certs.server.cert, join(tlsDir, 'tls.crt'));
  copyFileSync(certs.server.key, join(tlsDir, 'tls.key'));
  copyFileSync(certs.server.ca, join(tlsDir, 'ca.crt'));
  const procs: ManagedProcess[] = [];
  const gw = new Map<string, number>();
  for (const r of regions) gw.set(r.name, await freePort());
  const http = new Map<string, number>();
  try {
    for (const r of regions) {
      const parts = r.natsConf.split(/^(?=gateway \{)/m);
      if (parts.length !== 2) throw new Error(`region ${r.name}: nats.conf has ${parts.length - 1} gateway blocks, expected one after the cluster`);
      const [clusterPart, gatewayPart] = parts as [string, string];
      const dir = join(work, r.name);
      mkdirSync(dir);
      const p = { clientPort: await freePort(), httpPort: await freePort(), routePort: await freePort() };
      http.set(r.name, p.httpPort);
      // Of the three routes only this server's own is on loopback: the region's cluster is one
      // server here, enough for gateways (not for JetStream quorum, which cluster.test.ts covers).
      const dead = await freePort();
      const routes = clusterPart.match(/nats-route:\/\//g)?.length ?? 0;
      let conf = loopbackNatsConf(clusterPart, { ...p, routePorts: [p.routePort, ...Array<number>(Math.max(routes - 1, 0)).fill(dead)], storeDir: join(dir, 'js'), pidFile: join(dir, 'nats.pid'), tlsDir });
      const tlsRefs = gatewayPart.match(/\/etc\/nats-tls\//g)?.length ?? 0;
      if (tlsRefs !== 3) throw new Error(`region ${r.name}: the gateway block names the TLS files ${tlsRefs} times, expected 3`);
      let g = gatewayPart.split('/etc/nats-tls/').join(`${tlsDir}/`);
      if (!g.includes(`  port: ${GATEWAY_PORT}\n`)) throw new Error(`region ${r.name}: the gateway block does not listen on ${GATEWAY_PORT}`);
      g = g.replace(`  port: ${GATEWAY_PORT}\n`, `  listen: "127.0.0.1:${gw.get(r.name)}"\n`);
      for (const [name, port] of gw) {
        const host = gatewayHost(name);
        if (!g.includes(host)) throw new Error(`region ${r.name}: the gateway block never names ${host} (region ${name})`);
        g = g.split(host).join(`127.0.0.1:${port}`);
      }
      conf += g;
      writeFileSync(join(dir, 'nats.conf'), conf);
      writeFileSync(join(dir, 'authorization.conf'), r.authorizationConf);
      procs.push(await ManagedProcess.start(`nats-${r.name}`, toolPath('nats-server'), ['-c', join(dir, 'nats.conf')], {
        env: { ...process.env, POD_NAME: `tollgate-nats-0-${r.name}` }, ready: () => waitForPort(p.clientPort, '127.0.0.1', 20_000), timeoutMs: 30_000,
      }));
    }
  } catch (e) {
    for (const proc of procs) await proc.stop().catch(() => undefined);
    throw e;
  }

  const outbound = async (r: string): Promise<string[]> => {
    const z = (await (await fetch(`http://127.0.0.1:${http.get(r)}/gatewayz`, { signal: AbortSignal.timeout(3000) })).json()) as { name: string; outbound_gateways?: Record<string, unknown> };
    assert.equal(z.name, r, 'the gateway is named after the region');
    return Object.keys(z.outbound_gateways ?? {});
  };
  return {
    outbound,
    async joined(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const missing: string[] = [];
        for (const r of regions) {
          const out = await outbound(r.name);
          for (const o of regions) if (o !== r && !out.includes(o.name)) missing.push(`${r.name}→${o.name}`);
        }
        if (missing.length === 0) return;
        if (Date.now() > deadline) assert.fail(`gateways not joined after ${timeoutMs} ms: missing ${missing.join(', ')}`);
        await new Promise((res) => setTimeout(res, 300));
      }
    },
    async assertRogueRefused(region: string) {
      // A third "region" presenting the shared authz's identity (same CA, not the servers' one).
      const rogue = await pki.issue('rogue-gw', { commonName: 'rogue', uris: [natsServerIdentity(site).replace('tollgate-nats', 'tollgate-authz')], ips: ['127.0.0.1'], usage: 'both' });
      const dir = join(work, 'rogue');
      mkdirSync(dir);
      const port = await freePort();
      writeFileSync(join(dir, 'nats.conf'), [
        'server_name: rogue', `listen: "127.0.0.1:${port}"`,
        'gateway {', '  name: "rogue"', `  listen: "127.0.0.1:${await freePort()}"`,
        `  tls { cert_file: "${rogue.cert}", key_file: "${rogue.key}", ca_file: "${rogue.ca}", timeout: 3 }`,
        `  gateways: [ { name: "${region}", urls: ["nats://127.0.0.1:${gw.get(region)}"] } ]`, '}', '',
      ].join('\n'));
      const proc = await ManagedProcess.start('rogue', toolPath('nats-server'), ['-c', join(dir, 'nats.conf')], { ready: () => waitForPort(port, '127.0.0.1', 20_000) });
      procs.push(proc);
      const until = Date.now() + 20_000;
      while (!/Authorization Violation/.test(proc.output) && Date.now() < until) await new Promise((res) => setTimeout(res, 300));
      assert.match(proc.output, /Authorization Violation/);
      assert.ok(!(await outbound(region)).includes('rogue'), `${region} has no gateway to the rogue server`);
    },
    async stop() {
      for (const p of procs.splice(0)) await p.stop().catch(() => undefined);
    },
  };
}
