import { createServer } from 'node:http';
import { hostname } from 'node:os';
import { KubeConfig } from '@kubernetes/client-node';
import { loadSigningKey, loadVerificationKeys } from '../bundle/keys.js';
import { KubeClient } from '../operator/kube-client.js';
import { Operator } from '../operator/operator.js';
import { createLogger } from '../util/log.js';
import { parseHostPort } from '../util/net.js';
import { parseCommandArgs, parseDuration } from './args.js';
import { NATS_FLAGS, NATS_FLAGS_USAGE, natsSettingsFromFlags } from './nats-flags.js';
import { INJECTION_FLAGS, injectionOptions, toInjectOptions } from './inject.js';
import { UsageError, type Command } from './types.js';

const HELP = `Usage: tollgate operator --signing-key FILE [--nats URL] [flags]

Reconciles Tollgate's custom resources (tollgate.dev/v1alpha1), on the replica holding the Lease
tollgate-operator in --namespace (the others stand by):

  MCPServer    with spec.run or spec.source: a Deployment (Envoy and authz sidecars in its pod
               template, the permission profile as the server's securityContext; a source's
               stdio server behind \`tollgate bridge\`), a Service to Envoy, and a
               NetworkPolicy. Without either: status only.
  MCPPolicy    spec.rego is built (opa build -t wasm), signed and published over NATS under
               mcppolicy.<namespace>.<name>; status carries the revision, or the build error with
               file:line while the previous revision keeps serving.
  TokenBudget  every budget is published over NATS as budget definitions that authz replicas
               with nats.definitions: true apply live; status shows tokens used this window.

Every object gets a finalizer, conditions (Ready; Exhausted on budgets), observedGeneration and
Events. See docs/kubernetes.md.

  --signing-key FILE     bundle signing key, as for \`tollgate controlplane serve\` (required)
${NATS_FLAGS_USAGE}
                         (default nats://127.0.0.1:4222). With a secured NATS, give the operator
                         its own certificate (role kube-operator, docs/security.md): it may publish
                         only under mcppolicy.* pointer keys and the budget definitions
  --kubeconfig FILE      kubeconfig to use (default: in-cluster service account, else
                         $KUBECONFIG or ~/.kube/config)
  --namespace NS         namespace of the leader-election Lease (default $POD_NAMESPACE, else
                         tollgate-system)
  --system-namespace NS  namespace of the control plane and NATS, which operator-run servers'
                         NetworkPolicies let the sidecars reach (default tollgate-system)
  --server-image-prefix P  registry prefix of the images spec.source packages run from:
                         P/tollgate-server-npm-PKG:VERSION (default localhost; see
                         tollgate images build-server)
  --identity ID          this replica's name in the Lease (default $POD_NAME, else host-pid)
  --resync DUR           re-reconcile everything this often (default 30s); MCPServer status
                         (pending tool changes, from the tool-pinning buckets) is this fresh
  --pin-approver-key F   approver public key(s), PEM or JWK: only pins that verify count in
                         MCPServer status (default: pins read unverified, display only)
  --health-listen H:P    GET /healthz (the process runs) and /readyz (NATS connected) for the
                         kubelet's probes (default 0.0.0.0:8081; "off" disables)

${INJECTION_FLAGS}
`;

export const operatorCommand: Command = {
  name: 'operator',
  summary: 'Reconcile MCPServer, MCPPolicy and TokenBudget objects (leader-elected)',
  async run(argv: string[]): Promise<number> {
    const { values } = parseCommandArgs(argv, {
      'signing-key': { type: 'string' }, ...NATS_FLAGS, kubeconfig: { type: 'string' },
      namespace: { type: 'string' }, 'system-namespace': { type: 'string' }, 'server-image-prefix': { type: 'string' }, identity: { type: 'string' }, resync: { type: 'string' },
      'health-listen': { type: 'string' }, 'pin-approver-key': { type: 'string' },
      ...injectionOptions,
    });
    if (values.help) {
      process.stdout.write(HELP);
      return 0;
    }
    if (!values['signing-key']) throw new UsageError('--signing-key FILE is required (make one with `tollgate controlplane keys --out DIR`)');
    const resyncMs = values.resync === undefined ? 30_000 : Math.round(parseDuration(values.resync) * 1000);
    if (!(resyncMs >= 1000)) throw new UsageError('--resync must be at least 1s');
    const inject = toInjectOptions(values);
    let health: { host: string; port: number } | null = null;
    if (values['health-listen'] !== 'off') {
      try {
        health = parseHostPort(values['health-listen'] ?? '0.0.0.0:8081', '0.0.0.0');
      } catch (e) {
        throw new UsageError(`--health-listen: ${(e as Error).message}`);
      }
    }
    const log = createLogger('tollgate-operator');
    const signingKey = await loadSigningKey(values['signing-key']);
    const kc = new KubeConfig();
    if (values.kubeconfig) kc.loadFromFile(values.kubeconfig);
    else kc.loadFromDefault();
    if (!kc.getCurrentCluster()) throw new UsageError('no Kubernetes cluster configured: pass --kubeconfig FILE or run in a pod');
    const settings = natsSettingsFromFlags(values, 'nats://127.0.0.1:4222')!;
    const natsUrl = settings.servers.join(',');
    const { NatsLink } = await import('../nats/connect.js');
    const link = NatsLink.open(settings, { name: 'tollgate-operator' });
    const nc = await link.ready(60_000).catch(async (e: Error) => { await link.close(); throw new Error(`cannot reach NATS at ${natsUrl}: ${e.message}`); });
    const pinApproverKeys = values['pin-approver-key'] ? (await loadVerificationKeys(values['pin-approver-key'])).map((k) => ({ key: k.key, kid: k.kid, alg: k.alg })) : undefined;
    const operator = new Operator({
      ...(pinApproverKeys ? { pinApproverKeys } : {}),
      kube: new KubeClient(kc), nats: nc, signingKey, resyncMs,
      mesh: { systemNamespace: values['system-namespace'] ?? 'tollgate-system', inject, ...(values['server-image-prefix'] ? { serverImagePrefix: values['server-image-prefix'] } : {}) },
      leaseNamespace: values.namespace ?? process.env.POD_NAMESPACE ?? 'tollgate-system',
      identity: values.identity ?? process.env.POD_NAME ?? `${hostname()}-${process.pid}`,
      log,
    });
    const probes = health && createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0];
      const ok = path === '/healthz' || (path === '/readyz' && !nc.isClosed());
      res.writeHead(path === '/healthz' || path === '/readyz' ? (ok ? 200 : 503) : 404, { 'content-type': 'text/plain' });
      res.end(ok ? 'ok\n' : 'not ready\n');
    });
    if (probes && health) await new Promise<void>((resolve, reject) => { probes.once('error', reject); probes.listen(health.port, health.host, resolve); });
    operator.start();
    log.info({ cluster: kc.getCurrentCluster()?.server, nats: natsUrl, tls: settings.tls !== null && settings.tls !== undefined }, 'operator started; campaigning for the Lease');
    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    log.info({ signal }, 'shutting down: giving up the Lease');
    await operator.stop();
    probes?.close();
    await link.close();
    return 0;
  },
};
