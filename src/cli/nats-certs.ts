import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  CLUSTER_NATS_CLIENTS, clusterNatsAuthorization, issueClusterNatsCertificates, issueSidecarNatsCertificate, NATS_SERVER_SECRET, SIDECAR_NATS_SECRET,
  SIDECAR_NATS_SERVICE_ACCOUNT,
} from '../k8s/nats-cluster.js';
import { DEFAULT_TRUST_DOMAIN, LocalPki, type CertFiles } from '../pki/index.js';
import { parseCommandArgs } from './args.js';
import { regionListFlag } from './region-flags.js';
import { UsageError } from './types.js';

export const NATS_CERTS_USAGE = `Usage: tollgate controlplane nats-certs --ca-dir DIR --out DIR [flags]

Issues, from the mesh CA in --ca-dir (ca.crt, ca.key; made there if missing), the certificates
the NATS cluster of the Kubernetes manifests needs, one directory per Secret, each holding
tls.crt, tls.key and ca.crt:
  ${NATS_SERVER_SECRET.padEnd(28)}the NATS servers (client TLS and routes; every pod's DNS name)
${CLUSTER_NATS_CLIENTS.map((c) => `  ${c.secret.padEnd(28)}${c.role}, as service account ${c.serviceAccount}`).join('\n')}
and, for each --sidecar-namespace NS, the credential of the authz sidecars injected in NS
(DIR/sidecars/NS/${SIDECAR_NATS_SECRET}, role authz, as service account ${SIDECAR_NATS_SERVICE_ACCOUNT} of NS;
the injector mounts Secret ${SIDECAR_NATS_SECRET} of the pod's namespace into the sidecar),
and prints the kubectl commands that create the Secrets. Each client certificate's SPIFFE ID is
a user of the shipped authorization.conf (docs/kubernetes.md, "NATS"). It also writes
DIR/authorization.conf: those users for this namespace and trust domain (what ConfigMap
tollgate-nats holds; kustomize users installing elsewhere than tollgate-system replace it).

  --ca-dir DIR         the mesh CA (required)
  --out DIR            where to write the Secret directories (required)
  --namespace NS       the mesh's namespace (default tollgate-system)
  --gateway-dns NAME   an extra DNS name on the server certificate: the gateway load balancer
                       the other regions dial (multi-region; repeatable)
  --sidecar-namespace NS  a namespace with injected authz sidecars that use NATS (repeatable)
  --budget-regions A,B regions with regional budgets (the control plane's --budget-regions; Helm:
                       nats.budgetRegions): every user gets the same rights on each region's
                       usage bucket as on the global one
  --trust-domain TD    trust domain of the SPIFFE IDs (default ${DEFAULT_TRUST_DOMAIN}; Helm: nats.trustDomain)
  --days N             lifetime in days (default 365)
  --force              overwrite existing files under --out
  -h, --help           show this help
`;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export async function natsCerts(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs(argv, {
    'ca-dir': { type: 'string' }, out: { type: 'string' }, namespace: { type: 'string' }, 'trust-domain': { type: 'string' },
    days: { type: 'string' }, force: { type: 'boolean' }, 'sidecar-namespace': { type: 'string', multiple: true },
    'gateway-dns': { type: 'string', multiple: true }, 'budget-regions': { type: 'string' },
  });
  if (values.help) { process.stdout.write(NATS_CERTS_USAGE); return 0; }
  if (!values['ca-dir']) throw new UsageError('--ca-dir DIR is required: the mesh CA the NATS certificates are issued from');
  if (!values.out) throw new UsageError('--out DIR is required');
  const namespace = values.namespace ?? 'tollgate-system';
  if (!DNS_LABEL.test(namespace)) throw new UsageError(`--namespace "${namespace}" is not a Kubernetes namespace name (lowercase letters, digits and '-', at most 63)`);
  const sidecarNamespaces = [...new Set(values['sidecar-namespace'] ?? [])];
  for (const ns of sidecarNamespaces) {
    if (!DNS_LABEL.test(ns)) throw new UsageError(`--sidecar-namespace "${ns}" is not a Kubernetes namespace name (lowercase letters, digits and '-', at most 63)`);
  }
  const budgetRegions = regionListFlag('--budget-regions', values['budget-regions']);
  const trustDomain = values['trust-domain'] ?? DEFAULT_TRUST_DOMAIN;
  if (!/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(trustDomain)) throw new UsageError(`--trust-domain "${trustDomain}" is not a trust domain (lowercase letters, digits, '.', '-')`);
  const days = values.days === undefined ? 365 : Number(values.days);
  if (!/^\d{1,4}$/.test(values.days ?? '365') || days < 1 || days > 3650) throw new UsageError(`--days must be a whole number from 1 to 3650, got "${values.days}"`);

  const out = resolve(values.out);
  const secrets = [NATS_SERVER_SECRET, ...CLUSTER_NATS_CLIENTS.map((c) => c.secret)];
  const sidecarDir = (ns: string): string => join(out, 'sidecars', ns, SIDECAR_NATS_SECRET);
  if (!values.force) {
    for (const dir of [...secrets.map((s) => join(out, s)), ...sidecarNamespaces.map(sidecarDir)]) {
      if (existsSync(dir)) throw new UsageError(`${dir} exists; pass --force to overwrite it`);
    }
  }
  const pki = await LocalPki.open(resolve(values['ca-dir']), trustDomain);
  const gatewayDns = values['gateway-dns'] ?? [];
  for (const n of gatewayDns) {
    if (!/^(\*\.)?[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/.test(n)) throw new UsageError(`--gateway-dns "${n}" is not a DNS name`);
  }
  const certs = await issueClusterNatsCertificates(pki, { namespace, trustDomain }, { days, dnsNames: gatewayDns });
  const write = (secret: string, files: CertFiles, dir = join(out, secret)): void => {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    copyFileSync(files.cert, join(dir, 'tls.crt'));
    copyFileSync(files.key, join(dir, 'tls.key'));
    copyFileSync(files.ca, join(dir, 'ca.crt'));
  };
  write(NATS_SERVER_SECRET, certs.server);
  for (const [secret, files] of certs.clients) write(secret, files);
  for (const ns of sidecarNamespaces) write(SIDECAR_NATS_SECRET, await issueSidecarNatsCertificate(pki, trustDomain, ns, { days }), sidecarDir(ns));
  writeFileSync(join(out, 'authorization.conf'), clusterNatsAuthorization({ namespace, trustDomain, budgetRegions }, sidecarNamespaces));
  process.stdout.write([
    `NATS certificates for namespace ${namespace} (trust domain ${trustDomain}, ${days} days) in ${out}.`,
    'Create the Secrets (before or after applying the manifests; the pods wait for them):',
    ...secrets.map((s) => `  kubectl -n ${namespace} create secret generic ${s} --from-file=${join(out, s)}`),
    ...sidecarNamespaces.map((ns) => `  kubectl -n ${ns} create secret generic ${SIDECAR_NATS_SECRET} --from-file=${sidecarDir(ns)}`),
    `The NATS users for these identities are in ${join(out, 'authorization.conf')} (key authorization.conf of ConfigMap tollgate-nats).`,
    '',
  ].join('\n'));
  return 0;
}
