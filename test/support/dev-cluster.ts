/**
 * `make dev-cluster`: a throwaway Kubernetes control plane (etcd + kube-apiserver) on loopback for
 * trying Tollgate by hand, as docs/kubernetes.md walks through. Writes, under .state/kube/:
 *   kubeconfig                      admin credentials (export KUBECONFIG=$PWD/.state/kube/kubeconfig)
 *   webhook/tls.crt, tls.key        a serving certificate for a webhook on 127.0.0.1
 *   webhook-configuration.yaml      the shipped MutatingWebhookConfiguration, pointed at
 *                                   https://127.0.0.1:$WEBHOOK_PORT/mutate with that CA
 * Runs until Ctrl-C, then stops both processes and removes their data. No scheduler or kubelet:
 * pods are admitted (and injected) but stay Pending.
 */
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { loopbackServingCert, startKubeCluster, yamlObjects } from './kube-cluster.js';

const stateDir = resolve(process.env.KUBE_STATE ?? join('.state', 'kube'));
const webhookPort = Number(process.env.WEBHOOK_PORT ?? 24443);
rmSync(stateDir, { recursive: true, force: true });
mkdirSync(join(stateDir, 'webhook'), { recursive: true });
const cluster = await startKubeCluster();
copyFileSync(cluster.kubeconfigPath, join(stateDir, 'kubeconfig'));
const certs = loopbackServingCert(join(stateDir, 'webhook'));
const [mwc] = yamlObjects([resolve('manifests', 'base', 'webhook.yaml')]).filter((o) => o.kind === 'MutatingWebhookConfiguration');
const cfg = structuredClone(mwc) as Record<string, unknown> & { webhooks: { clientConfig: unknown }[] };
for (const w of cfg.webhooks) w.clientConfig = { url: `https://127.0.0.1:${webhookPort}/mutate`, caBundle: Buffer.from(certs.caPem).toString('base64') };
writeFileSync(join(stateDir, 'webhook-configuration.yaml'), stringify(cfg));
process.stdout.write([
  `kube-apiserver ${cluster.server} is ready (etcd and logs in ${cluster.dir}).`,
  `  export KUBECONFIG=${join(stateDir, 'kubeconfig')}`,
  `  webhook certificate: ${join(stateDir, 'webhook')}/tls.crt, tls.key (for 127.0.0.1:${webhookPort})`,
  `  webhook configuration: ${join(stateDir, 'webhook-configuration.yaml')}`,
  'Ctrl-C stops it.', '',
].join('\n'));
await new Promise<void>((r) => { process.once('SIGINT', r); process.once('SIGTERM', r); });
await cluster.stop();
rmSync(stateDir, { recursive: true, force: true });
