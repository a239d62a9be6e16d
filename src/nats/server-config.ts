import type { UserPermissions } from './permissions.js';

/**
 * Renders a nats-server configuration file. Pure text; every string goes through JSON quoting,
 * which nats-server's config parser reads as a quoted string.
 */

export interface ServerTls {
  cert: string;
  key: string;
  ca: string;
}

export interface ClusterSettings {
  name: string;
  host: string;
  port: number;
  /** nats-route://host:port of the other members. */
  routes: string[];
}

/** A remote region's gateway: the cluster name and its members' gateway URLs. */
export interface RemoteGateway {
  name: string;
  /** nats://host:port of that cluster's gateway listeners. */
  urls: string[];
}

/**
 * Gateways join clusters (regions) into one supercluster: one JetStream, streams placed per
 * cluster. `name` must be this server's cluster name (nats-server requires the two to match).
 */
export interface GatewaySettings {
  name: string;
  host: string;
  port: number;
  gateways: RemoteGateway[];
  /** host:port the other regions are told to dial for this server (a load balancer's, a relay's); default: `listen`. */
  advertise?: string;
  /**
   * With TLS: the only identity (SPIFFE ID in the certificate's URI SAN) a gateway peer may
   * present. A gateway link carries every account's traffic past user permissions, so a mesh
   * client certificate from the same CA must not be able to open one.
   */
  peerIdentity?: string;
}

export interface ServerConfigInput {
  serverName: string;
  host: string;
  port: number;
  storeDir: string;
  /** Client TLS with client certificates required and mapped to users (verify_and_map). */
  tls: ServerTls | null;
  /** Users by certificate SPIFFE ID; with tls. Nobody else can connect. */
  users: UserPermissions[];
  cluster?: ClusterSettings | null;
  gateway?: GatewaySettings | null;
}

const q = (s: string): string => JSON.stringify(s);
const list = (xs: string[]): string => `[${xs.map(q).join(', ')}]`;

/**
 * The `authorization { users = [...] }` block for users mapped from client certificates. Also what
 * the Kubernetes manifests ship as `authorization.conf` (a test keeps them equal).
 */
export function renderAuthorization(users: UserPermissions[]): string {
  const lines = ['authorization {', '  users = ['];
  for (const u of users) {
    lines.push(
      `    # ${u.role}`,
      `    { user: ${q(u.user)}, permissions: {`,
      `        publish: { allow: ${list(u.publish)} }`,
      `        subscribe: { allow: ${list(u.subscribe)} }`,
      // Nobody answers requests in Tollgate; without this a user could reply as the server does.
      '        allow_responses: false',
      '    } }',
    );
  }
  lines.push('  ]', '}');
  return lines.join('\n') + '\n';
}

export function renderServerConfig(c: ServerConfigInput): string {
  if (c.users.length > 0 && !c.tls) throw new Error('NATS users are mapped from client certificates: users need tls');
  const lines: string[] = [
    '# Written by Tollgate; regenerated on every start. See docs/security.md ("NATS").',
    `server_name: ${q(c.serverName)}`,
    `listen: ${q(`${c.host}:${c.port}`)}`,
    `jetstream { store_dir: ${q(c.storeDir)} }`,
  ];
  if (c.tls) {
    lines.push(
      'tls {',
      `  cert_file: ${q(c.tls.cert)}`,
      `  key_file: ${q(c.tls.key)}`,
      `  ca_file: ${q(c.tls.ca)}`,
      // A client certificate is required, and its SPIFFE ID (URI SAN) is the user name.
      '  verify_and_map: true',
      '  timeout: 3',
      '}',
    );
  }
  if (c.users.length > 0) lines.push(...renderAuthorization(c.users).split('\n').slice(0, -1));
  if (c.cluster) {
    lines.push(
      'cluster {',
      `  name: ${q(c.cluster.name)}`,
      `  listen: ${q(`${c.cluster.host}:${c.cluster.port}`)}`,
      `  routes: ${list(c.cluster.routes)}`,
    );
    if (c.tls) {
      // Routes authenticate with the same CA; the route certificate is the server's own.
      lines.push('  tls {', `    cert_file: ${q(c.tls.cert)}`, `    key_file: ${q(c.tls.key)}`, `    ca_file: ${q(c.tls.ca)}`, '    verify: true', '    timeout: 3', '  }');
    }
    lines.push('}');
  }
  if (c.gateway) lines.push(...renderGateway(c.gateway, c.tls, c.cluster?.name ?? null));
  return lines.join('\n') + '\n';
}

function renderGateway(g: GatewaySettings, tls: ServerTls | null, clusterName: string | null): string[] {
  if (clusterName !== null && clusterName !== g.name) throw new Error(`gateway name "${g.name}" must equal the cluster name "${clusterName}"`);
  if (tls && !g.peerIdentity) throw new Error('a TLS gateway needs the identity its peers present (peerIdentity)');
  const lines = ['gateway {', `  name: ${q(g.name)}`, `  listen: ${q(`${g.host}:${g.port}`)}`];
  if (g.advertise) lines.push(`  advertise: ${q(g.advertise)}`);
  if (tls) {
    // Mutual TLS, and the peer's certificate must name the NATS servers' own identity: verify_and_map
    // matches its URI SAN against the one user below (a password would be a second secret to ship).
    lines.push(
      '  tls {', `    cert_file: ${q(tls.cert)}`, `    key_file: ${q(tls.key)}`, `    ca_file: ${q(tls.ca)}`,
      '    verify_and_map: true', '    timeout: 3', '  }',
      `  authorization { user: ${q(g.peerIdentity!)} }`,
    );
  }
  lines.push('  gateways: [');
  for (const r of g.gateways) lines.push(`    { name: ${q(r.name)}, urls: ${list(r.urls)} }`);
  lines.push('  ]', '}');
  return lines;
}
