import type { RemoteGateway } from '../nats/server-config.js';
import { isRegionName } from '../nats/placement.js';

/**
 * A region of a multi-region install (manifests/overlays/multi-region, docs/multi-region.md): the
 * nats.conf of manifests/base with its cluster named after the region and a TLS gateway block
 * joining it to the other regions. Pure text; the overlays ship its output (a test keeps them equal).
 */

export const GATEWAY_PORT = 7222;

export interface RegionNats {
  /** This region: the NATS cluster and gateway name, and the control plane's --region. */
  region: string;
  /** host:port the other regions dial for this region's servers (its gateway load balancer). */
  advertise: string;
  /** Every other region, by name, with its gateway URL(s). */
  peers: RemoteGateway[];
  /** The NATS servers' SPIFFE ID (nats-cluster.ts natsServerIdentity): the only gateway peer admitted. */
  serverIdentity: string;
}

const q = (s: string): string => JSON.stringify(s);

export function regionNatsConf(baseConf: string, r: RegionNats): string {
  for (const name of [r.region, ...r.peers.map((p) => p.name)]) {
    if (!isRegionName(name)) throw new Error(`"${name}" is not a region name (1-32 letters, digits or "-")`);
  }
  if (r.peers.some((p) => p.name === r.region)) throw new Error(`region ${r.region} lists itself as a peer`);
  const named = baseConf.match(/^ {2}name: tollgate$/gm)?.length ?? 0;
  if (named !== 1) throw new Error(`nats.conf: expected one cluster "name: tollgate", found ${named}`);
  const lines = [
    // Gateways join the regions into one supercluster; a peer must present the NATS servers'
    // own identity (a component's client certificate from the same CA cannot open a gateway).
    'gateway {',
    `  name: ${q(r.region)}`,
    `  port: ${GATEWAY_PORT}`,
    `  advertise: ${q(r.advertise)}`,
    '  tls {',
    '    cert_file: /etc/nats-tls/tls.crt',
    '    key_file: /etc/nats-tls/tls.key',
    '    ca_file: /etc/nats-tls/ca.crt',
    '    verify_and_map: true',
    '    timeout: 3',
    '  }',
    `  authorization { user: ${q(r.serverIdentity)} }`,
    '  gateways: [',
    ...r.peers.map((p) => `    { name: ${q(p.name)}, urls: [${p.urls.map(q).join(', ')}] }`),
    '  ]',
    '}',
  ];
  return `${baseConf.replace(/^ {2}name: tollgate$/m, `  name: ${q(r.region)}`).replace(/\n*$/, '\n')}${lines.join('\n')}\n`;
}
