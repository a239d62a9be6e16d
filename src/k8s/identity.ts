import { CERT_SDS_FILE, type WorkloadTls } from '../envoy/bootstrap.js';
import { DEFAULT_TRUST_DOMAIN, spiffeId } from '../pki/identity.js';
import type { Container, Volume } from './types.js';

/**
 * The pod's workload certificate for mTLS to the control plane (docs/security.md): a projected
 * service-account token for the control plane's audience, an init container that trades it for a
 * certificate (`tollgate cert request`), and an in-memory volume that Envoy reads the files from.
 * The API server vouches for the identity, the control plane checks it (TokenReview).
 */

export interface IdentityPlan {
  /** The control plane's `https://…/v1/certificates` (its --workload-certs). */
  certsUrl: string;
  /** ConfigMap (in the pod's namespace) with the mesh CA as `ca.crt`. */
  caConfigMap: string;
  /** Image that has the tollgate CLI (the authz image). */
  image: string;
}

export const IDENTITY_CONTAINER = 'tollgate-identity';
export const IDENTITY_RENEW_CONTAINER = 'tollgate-identity-renew';
const IDENTITY_VOLUME = 'tollgate-identity';
const TOKEN_VOLUME = 'tollgate-sa-token';
const MESH_CA_VOLUME = 'tollgate-mesh-ca';
const IDENTITY_DIR = '/var/run/tollgate/identity';
const TOKEN_DIR = '/var/run/secrets/tollgate';
const MESH_CA_DIR = '/etc/tollgate/mesh-ca';
export const TOKEN_AUDIENCE = 'tollgate-controlplane';
export const DEFAULT_MESH_CA_CONFIGMAP = 'tollgate-mesh-ca';
export const CONTROL_PLANE_SPIFFE_ID = spiffeId({ trustDomain: DEFAULT_TRUST_DOMAIN, namespace: 'tollgate-system', serviceAccount: 'tollgate-controlplane' });

export function identityVolumes(p: IdentityPlan): Volume[] {
  return [
    // Memory-backed: the private key never touches the node's disk.
    { name: IDENTITY_VOLUME, emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } },
    { name: TOKEN_VOLUME, projected: { sources: [{ serviceAccountToken: { audience: TOKEN_AUDIENCE, expirationSeconds: 3600, path: 'token' } }] } },
    { name: MESH_CA_VOLUME, configMap: { name: p.caConfigMap } },
  ];
}

function certRequestArgs(p: IdentityPlan): string[] {
  return ['cert', 'request', '--url', p.certsUrl, '--ca', `${MESH_CA_DIR}/ca.crt`, '--token-file', `${TOKEN_DIR}/token`, '--out', IDENTITY_DIR];
}

/** Runs to completion before the sidecars start; a refused request fails the pod (fail closed). */
export function identityInitContainer(p: IdentityPlan, securityContext: Record<string, unknown>): Container {
  return {
    name: IDENTITY_CONTAINER,
    image: p.image,
    imagePullPolicy: 'IfNotPresent',
    args: certRequestArgs(p),
    volumeMounts: [
      { name: IDENTITY_VOLUME, mountPath: IDENTITY_DIR },
      { name: TOKEN_VOLUME, mountPath: TOKEN_DIR, readOnly: true },
      { name: MESH_CA_VOLUME, mountPath: MESH_CA_DIR, readOnly: true },
    ],
    resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { cpu: '500m', memory: '128Mi' } },
    securityContext,
  };
}

/**
 * Runs for the pod's life beside Envoy and renews the certificate at half its remaining lifetime
 * (`cert request --renew`); Envoy follows the renamed files through its file-based SDS source.
 * `restartPolicy` makes it a native sidecar; unset, a plain container.
 */
export function identityRenewContainer(p: IdentityPlan, securityContext: Record<string, unknown>, restart: { restartPolicy?: 'Always' }): Container {
  const init = identityInitContainer(p, securityContext);
  return {
    ...init,
    name: IDENTITY_RENEW_CONTAINER,
    ...restart,
    args: [...certRequestArgs(p), '--renew'],
    resources: { requests: { cpu: '5m', memory: '48Mi' }, limits: { cpu: '200m', memory: '128Mi' } },
  };
}

export function envoyIdentityMounts(): Record<string, unknown>[] {
  return [
    { name: IDENTITY_VOLUME, mountPath: IDENTITY_DIR, readOnly: true },
    { name: MESH_CA_VOLUME, mountPath: MESH_CA_DIR, readOnly: true },
  ];
}

/** What Envoy's bootstrap needs to speak mTLS to the control plane. */
export function bootstrapTls(): WorkloadTls {
  return {
    cert: `${IDENTITY_DIR}/tls.crt`, key: `${IDENTITY_DIR}/tls.key`, ca: `${MESH_CA_DIR}/ca.crt`, controlPlaneIdentity: CONTROL_PLANE_SPIFFE_ID,
    sdsFile: `${IDENTITY_DIR}/${CERT_SDS_FILE}`,
  };
}
