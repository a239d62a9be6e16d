import { readFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { readCaFile } from '../util/pem-ca.js';

/**
 * A KubeConfig for the control plane's API-server access: an explicit server with a bearer token
 * file and CA file (`--apiserver`, `--apiserver-token`, `--apiserver-ca`), else the pod's own
 * service account (in-cluster; client-node re-reads the projected token as it rotates).
 */
export function kubeConfigFor(access: { server: string; tokenFile?: string; caFile?: string } | null): KubeConfig {
  const kc = new KubeConfig();
  if (!access) {
    if (!process.env.KUBERNETES_SERVICE_HOST) throw new Error('not in a cluster (KUBERNETES_SERVICE_HOST is unset): give --apiserver URL with --apiserver-token and --apiserver-ca');
    kc.loadFromCluster();
    return kc;
  }
  const token = access.tokenFile ? readFileSync(access.tokenFile, 'utf8').trim() : undefined;
  kc.loadFromOptions({
    clusters: [{ name: 'api', server: access.server, ...(access.caFile ? { caData: Buffer.from(readCaFile(access.caFile, `--apiserver-ca ${access.caFile}`)).toString('base64') } : {}), skipTLSVerify: false }],
    users: [{ name: 'controlplane', ...(token ? { token } : {}) }],
    contexts: [{ name: 'controlplane', cluster: 'api', user: 'controlplane' }],
    currentContext: 'controlplane',
  });
  return kc;
}
