import { DEFAULT_TRUST_DOMAIN, spiffeId, type LocalPki } from '../pki/index.js';
import { DEFAULT_RESOURCES, permissionsFor, type NatsResources, type NatsRole, type UserPermissions } from './permissions.js';
import type { ServerTls } from './server-config.js';
import type { NatsTlsFiles } from './settings.js';

/**
 * Certificates for a secured NATS from the local CA: the server's, and one client certificate per
 * component whose SPIFFE ID is that component's NATS user. Why certificates and not NKeys: the
 * certificate is already each component's identity on the mesh's other channels (xDS, authz
 * gRPC), so one credential per component covers them all, it never crosses the wire, and TLS is
 * needed anyway; NKeys would add a second secret per component to issue and rotate.
 */

export interface ComponentSpec {
  /** File-name-safe label, e.g. "authz-demo". */
  name: string;
  role: NatsRole;
  namespace?: string;
  /** Service account in the SPIFFE ID (default: name). */
  serviceAccount?: string;
}

export interface ComponentCredential {
  name: string;
  role: NatsRole;
  spiffeId: string;
  tls: NatsTlsFiles;
}

export interface NatsCredentials {
  server: ServerTls;
  clients: Map<string, ComponentCredential>;
  users: UserPermissions[];
}

export async function issueNatsCredentials(pki: LocalPki, components: ComponentSpec[], o: { trustDomain?: string; resources?: NatsResources } = {}): Promise<NatsCredentials> {
  const trustDomain = o.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  const server = await pki.issue('nats-server', {
    commonName: 'tollgate-nats', dnsNames: ['localhost'], ips: ['127.0.0.1'],
    uris: [spiffeId({ trustDomain, namespace: 'tollgate-system', serviceAccount: 'nats' })],
    // Cluster routes present the same certificate as clients of each other.
    usage: 'both',
  });
  const clients = new Map<string, ComponentCredential>();
  const users: UserPermissions[] = [];
  for (const c of components) {
    const id = spiffeId({ trustDomain, namespace: c.namespace ?? 'default', serviceAccount: c.serviceAccount ?? c.name });
    const files = await pki.issue(`nats-${c.name}`, { commonName: `tollgate ${c.role} ${c.name}`, uris: [id], usage: 'client' });
    clients.set(c.name, { name: c.name, role: c.role, spiffeId: id, tls: { ca: files.ca, cert: files.cert, key: files.key } });
    users.push(permissionsFor(c.role, id, o.resources ?? DEFAULT_RESOURCES));
  }
  return { server: { cert: server.cert, key: server.key, ca: server.ca }, clients, users };
}
