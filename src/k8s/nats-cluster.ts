import { spiffeId, type CertFiles, type LocalPki } from '../pki/index.js';
import { DEFAULT_RESOURCES, permissionsFor, type NatsResources, type NatsRole, type UserPermissions } from '../nats/permissions.js';
import { renderAuthorization } from '../nats/server-config.js';

/**
 * The NATS cluster the manifests deploy (manifests/base/nats.yaml, the Helm chart's nats.yaml):
 * who its users are, the names its certificate must carry, and the seed URLs clients get. Pure,
 * except issueClusterNatsCertificates, which writes certificate files through the PKI.
 */

/** A Tollgate component in the mesh's namespace that connects to NATS, and its credential Secret. */
export interface ClusterNatsClient {
  role: NatsRole;
  serviceAccount: string;
  /** Secret holding tls.crt, tls.key and ca.crt; the certificate's SPIFFE ID is the NATS user. */
  secret: string;
}

export const CLUSTER_NATS_CLIENTS: readonly ClusterNatsClient[] = [
  { role: 'controlplane', serviceAccount: 'tollgate-controlplane', secret: 'tollgate-nats-controlplane' },
  { role: 'kube-operator', serviceAccount: 'tollgate-operator', secret: 'tollgate-nats-operator' },
  { role: 'authz', serviceAccount: 'tollgate-authz', secret: 'tollgate-nats-authz' },
];

/** The Secret with the NATS servers' own certificate (client TLS and routes). */
export const NATS_SERVER_SECRET = 'tollgate-nats-tls';
export const NATS_SERVICE_ACCOUNT = 'tollgate-nats';
const HEADLESS = 'tollgate-nats-headless';

export interface ClusterNatsSite {
  /** Namespace of the mesh (tollgate-system in manifests/base). */
  namespace: string;
  trustDomain: string;
  /**
   * Regions with a usage bucket of their own (regional budgets; the control plane's
   * `--budget-regions`, Helm's nats.budgetRegions): every user's rights on the usage bucket cover them.
   */
  budgetRegions?: readonly string[];
}

/**
 * Injected authz sidecars: one NATS identity per labelled namespace, the service account name
 * below in that namespace, role `authz`. Its certificate is the Secret SIDECAR_NATS_SECRET in that
 * namespace, which the injector mounts into every authz sidecar it adds (optional: a namespace
 * whose authz does not use NATS needs none). Per namespace, not per pod: a NATS user is a line of
 * authorization.conf, which the servers read at start; and the decision-log subjects it may write
 * carry the namespace, so one team cannot write records as another.
 */
export const SIDECAR_NATS_SERVICE_ACCOUNT = 'tollgate-authz-sidecar';
export const SIDECAR_NATS_SECRET = 'tollgate-nats-authz';
/** Where the injected authz sidecar finds that Secret (its authz.yaml names the files under it). */
export const SIDECAR_NATS_DIR = '/etc/tollgate-nats';

/** The NATS user of the authz sidecars of one namespace. */
export function sidecarNatsIdentity(trustDomain: string, namespace: string): string {
  return spiffeId({ trustDomain, namespace, serviceAccount: SIDECAR_NATS_SERVICE_ACCOUNT });
}

/** The mesh's components, then one authz user per sidecar namespace, in the order given. */
export function clusterNatsUsers(site: ClusterNatsSite, sidecarNamespaces: readonly string[] = []): UserPermissions[] {
  const resources: NatsResources = site.budgetRegions?.length ? { ...DEFAULT_RESOURCES, budgetRegions: site.budgetRegions } : DEFAULT_RESOURCES;
  return [
    ...CLUSTER_NATS_CLIENTS.map((c) => permissionsFor(c.role, spiffeId({ trustDomain: site.trustDomain, namespace: site.namespace, serviceAccount: c.serviceAccount }), resources)),
    ...sidecarNamespaces.map((ns) => permissionsFor('authz', sidecarNatsIdentity(site.trustDomain, ns), resources, { namespace: ns })),
  ];
}

/** The `authorization.conf` the NATS ConfigMap carries. */
export function clusterNatsAuthorization(site: ClusterNatsSite, sidecarNamespaces: readonly string[] = []): string {
  return renderAuthorization(clusterNatsUsers(site, sidecarNamespaces));
}

/** The SPIFFE ID of the NATS servers: on their routes, only this identity is another server. */
export function natsServerIdentity(site: ClusterNatsSite): string {
  return spiffeId({ trustDomain: site.trustDomain, namespace: site.namespace, serviceAccount: NATS_SERVICE_ACCOUNT });
}

/** DNS names clients and routes reach the servers by: the Service, and every pod of the headless one. */
export function natsServerDnsNames(namespace: string): string[] {
  const names: string[] = [];
  for (const suffix of ['svc', 'svc.cluster.local']) {
    names.push(`tollgate-nats.${namespace}.${suffix}`, `*.${HEADLESS}.${namespace}.${suffix}`);
  }
  return ['tollgate-nats', `tollgate-nats.${namespace}`, ...names];
}

/** Every member's client URL: clients get them all, so any one member is enough to connect. */
export function natsSeedUrls(namespace: string, replicas: number): string[] {
  if (!Number.isInteger(replicas) || replicas < 1) throw new Error(`NATS replicas must be a whole number of at least 1, got ${replicas}`);
  return Array.from({ length: replicas }, (_, i) => `tls://tollgate-nats-${i}.${HEADLESS}.${namespace}.svc:4222`);
}

export interface ClusterNatsCertificates {
  server: CertFiles;
  /** By Secret name (CLUSTER_NATS_CLIENTS). */
  clients: Map<string, CertFiles>;
}

/**
 * The server certificate (used both ways: routes present it as clients of each other) and one
 * client certificate per component, from the mesh CA. `ips`, `dnsNames`: extra SANs (tests on
 * loopback).
 */
export async function issueClusterNatsCertificates(pki: LocalPki, site: ClusterNatsSite, o: { ips?: string[]; dnsNames?: string[]; days?: number } = {}): Promise<ClusterNatsCertificates> {
  const server = await pki.issue('nats-cluster-server', {
    commonName: 'tollgate-nats', dnsNames: [...natsServerDnsNames(site.namespace), ...(o.dnsNames ?? [])], ips: o.ips ?? [],
    uris: [natsServerIdentity(site)], usage: 'both', ...(o.days ? { days: o.days } : {}),
  });
  const clients = new Map<string, CertFiles>();
  for (const c of CLUSTER_NATS_CLIENTS) {
    const id = spiffeId({ trustDomain: site.trustDomain, namespace: site.namespace, serviceAccount: c.serviceAccount });
    clients.set(c.secret, await pki.issue(c.secret, { commonName: `tollgate ${c.role}`, uris: [id], usage: 'client', ...(o.days ? { days: o.days } : {}) }));
  }
  return { server, clients };
}

/** The client certificate of the authz sidecars of one namespace (Secret SIDECAR_NATS_SECRET there). */
export async function issueSidecarNatsCertificate(pki: LocalPki, trustDomain: string, namespace: string, o: { days?: number } = {}): Promise<CertFiles> {
  return pki.issue(`${SIDECAR_NATS_SECRET}-${namespace}`, {
    commonName: `tollgate authz sidecars of ${namespace}`, uris: [sidecarNatsIdentity(trustDomain, namespace)], usage: 'client', ...(o.days ? { days: o.days } : {}),
  });
}
