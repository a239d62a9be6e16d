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
  return lines.join('\n') + '\n';
}
