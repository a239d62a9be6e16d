import { defaultConfig, loadConfigFile, parseProvenance, unusedSetting, type AuthzConfig } from '../authz/config.js';
import { startAuthz } from '../authz/runtime.js';
import { parseHostPort } from '../util/net.js';
import { DEFAULT_TRUST_DOMAIN } from '../pki/identity.js';
import { parseCommandArgs } from './args.js';
import { NATS_FLAGS, NATS_FLAGS_USAGE } from './nats-flags.js';
import { NatsSettingsError, tlsFiles } from '../nats/settings.js';
import { UsageError, type Command } from './types.js';
import { NAMESPACE_NAME } from '../budget/config.js';

const USAGE = `Usage: tollgate authz [--config FILE] [flags]

Runs the authz service: Envoy ext_authz v3 (and ext_proc) over gRPC. Every flag overrides the
same field of the config file (docs/configuration.md documents each field).

  --config FILE                YAML config file
  --listen HOST:PORT           gRPC address (default 127.0.0.1:9191)
  --policies DIR               build and load Rego from DIR (opa build -t wasm)
  --watch                      with --policies: rebuild and swap when files under DIR change
${NATS_FLAGS_USAGE.replace(/^ {2}/gm, '  ')}
                               One connection serves the policy source, budgets and the log replica.
  --policy-from-nats           follow signed bundles the control plane publishes on NATS (--nats);
                               the highest revision accepted is kept in the state dir, and an older
                               one is refused even after a restart
  --policy-nats URL            the same, naming the URL (must equal --nats when both are given)
  --verification-key FILE      public key (PEM or JWK/JWKS) that signed bundles must verify with:
                               those from NATS or from the bundle URL (flag or file); refused
                               without either
  --bundle-url URL             poll an OPA bundle server (ETag); signed bundles are checked
                               against --verification-key when given
  --entrypoint tollgate|envoy  policy contract: tollgate.authz.decision (default) or
                               opa-envoy-plugin's envoy.authz.allow
  --issuer URL                 token issuer (OIDC discovery at URL/.well-known/openid-configuration)
  --audience URL               accepted token audience; repeat for several (default
                               http://127.0.0.1:10000/mcp)
  --server NAME                MCP server name when the sidecar route does not say (default "default")
  --namespace NS               its namespace (default "default")
  --server-provenance JSON     where the server came from, as input.mcp.provenance (set by tollgate run/up)
  --resource-metadata URL      RFC 9728 metadata URL put in 401 challenges
  --decision-log DIR           decision log directory (default <state>/decisions)
  --replicate-decisions        also replicate decision records to NATS JetStream (--nats)
  --decision-log-nats URL      the same, naming the URL (must equal --nats when both are given)
  --decision-log-witness PATH  append-only copy of every checkpoint, outside the log directory
                               (default <decision log dir>.witness.jsonl; "off" for none)
  --budgets FILE               token budgets (docs/budgets.md); none: no budgets enforced
  --budget-namespace NS        the Kubernetes namespace this authz serves: the budgets file's
                               nats.namespace (refused if the file names another); the injector
                               sets it to the pod's namespace
  --pins-nats URL              enforce tool pins kept in NATS KV (docs/tool-pinning.md); needs --pin-approver-key
  --pin-approver-key FILE      public key(s) (PEM / JWK / JWKS) whose signed approvals of tool pins are trusted
  --no-decision-log            write no decision log (not for production)
  --deny-status N              HTTP status of policy denials of JSON-RPC requests (default 200)
  --upstream-authorization V   Authorization header value sent to the MCP server instead of the
                               caller's token (default: the header is removed)
  --metrics-listen HOST:PORT   admin endpoints /metrics /healthz /readyz /status
                               (docs/observability.md); default 127.0.0.1:9464, "off" for none
  --state DIR                  state directory (default $TOLLGATE_STATE_DIR or ./.state)
  --tls-cert FILE              serve gRPC over mTLS with this certificate (PEM): for authz that
  --tls-key FILE               Envoy reaches across pods; needs all three flags. Envoy must then
  --client-ca FILE             present a workload certificate from this CA (docs/security.md).
                               Without them authz is plaintext: keep it on the pod's loopback.
  --trust-domain TD            SPIFFE trust domain of callers (default tollgate.local)
  --allow-peer SPIFFE_ID       only this workload may call; repeatable (default: any workload of
                               the trust domain)

Stops cleanly on SIGINT/SIGTERM, letting in-flight checks finish.
`;

export function configFromArgs(argv: string[]): AuthzConfig | null {
  const { values } = parseCommandArgs(argv, {
    config: { type: 'string' }, listen: { type: 'string' }, policies: { type: 'string' }, entrypoint: { type: 'string' },
    watch: { type: 'boolean' }, 'policy-nats': { type: 'string' }, 'verification-key': { type: 'string' }, 'bundle-url': { type: 'string' },
    'decision-log-nats': { type: 'string' }, 'decision-log-witness': { type: 'string' }, budgets: { type: 'string' }, 'budget-namespace': { type: 'string' }, 'metrics-listen': { type: 'string' },
    'pins-nats': { type: 'string' }, 'pin-approver-key': { type: 'string' },
    issuer: { type: 'string' }, audience: { type: 'string', multiple: true }, server: { type: 'string' }, namespace: { type: 'string' }, 'server-provenance': { type: 'string' },
    'resource-metadata': { type: 'string' }, 'decision-log': { type: 'string' }, 'no-decision-log': { type: 'boolean' },
    'deny-status': { type: 'string' }, 'upstream-authorization': { type: 'string' }, state: { type: 'string' },
    'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' }, 'client-ca': { type: 'string' }, 'trust-domain': { type: 'string' },
    'allow-peer': { type: 'string', multiple: true },
    ...NATS_FLAGS, 'policy-from-nats': { type: 'boolean' }, 'replicate-decisions': { type: 'boolean' },
  });
  if (values.help) return null;
  const base = defaultConfig();
  if (values.state) { base.stateDir = values.state; base.decisionLogDir = `${values.state}/decisions`; }
  const c = values.config ? loadConfigFile(values.config, base) : base;
  if (values.listen) c.listen = parseHostPort(values.listen);
  if (values.policies) c.policy.dir = values.policies;
  if (values.watch) c.policy.watch = true;
  if (values.nats) c.nats.url = values.nats;
  try {
    const tls = tlsFiles({ ca: values['nats-ca'], cert: values['nats-cert'], key: values['nats-key'] });
    if (tls) c.nats.tls = tls;
  } catch (e) {
    if (e instanceof NatsSettingsError) throw new UsageError(e.message);
    throw e;
  }
  if (values['policy-nats'] || values['policy-from-nats']) {
    if (!values['verification-key']) throw new UsageError('--policy-from-nats needs --verification-key: bundles from NATS are always signature-checked');
    c.policy.nats = { url: values['policy-nats'] ?? null, verificationKey: values['verification-key'] };
  }
  if (values['bundle-url']) c.policy.bundleUrl = values['bundle-url'];
  const key = values['verification-key'];
  // The one key flag serves the source of signed bundles configured, by flag or in the file.
  if (key && c.policy.bundleUrl) c.policy.bundleKey = key;
  else if (key && c.policy.nats) c.policy.nats.verificationKey = key;
  else if (key) throw new UsageError('--verification-key needs a source of signed bundles to verify: --policy-from-nats or --bundle-url (or from_nats / bundle_url in the config file)');
  if (values['decision-log-nats']) c.decisionLogNatsUrl = values['decision-log-nats'];
  if (values['decision-log-witness']) c.decisionLogWitness = values['decision-log-witness'] === 'off' ? null : values['decision-log-witness'];
  if (values['decision-log-nats'] || values['replicate-decisions']) c.decisionLogReplicate = true;
  if (values.budgets) c.budgetsFile = values.budgets;
  if (values['budget-namespace'] !== undefined) {
    if (!NAMESPACE_NAME.test(values['budget-namespace'])) throw new UsageError(`--budget-namespace: "${values['budget-namespace']}" is not a Kubernetes namespace name (lowercase letters, digits and "-", at most 63)`);
    c.budgetNamespace = values['budget-namespace'];
  }
  if (values['pins-nats']) {
    if (!values['pin-approver-key']) throw new UsageError('--pins-nats needs --pin-approver-key: pins are only trusted when an approver signed them');
    c.pins = { natsUrl: values['pins-nats'], approverKey: values['pin-approver-key'] };
  } else if (values['pin-approver-key']) {
    throw new UsageError('--pin-approver-key needs --pins-nats');
  }
  // The command serves metrics by default; the library default stays off so tests can run many.
  const m = values['metrics-listen'] ?? (values.config ? undefined : '127.0.0.1:9464');
  if (m === 'off') c.metricsListen = null;
  else if (m !== undefined) c.metricsListen = parseHostPort(m);
  if (values.entrypoint) {
    if (values.entrypoint !== 'tollgate' && values.entrypoint !== 'envoy') throw new UsageError('--entrypoint must be "tollgate" or "envoy"');
    c.policy.entrypoint = values.entrypoint;
  }
  if (values.issuer) c.identity.issuer = values.issuer;
  if (values.audience?.length) c.identity.audience = values.audience;
  if (values.server) c.server.name = values.server;
  if (values.namespace) c.server.namespace = values.namespace;
  if (values['server-provenance']) {
    let doc: unknown;
    try { doc = JSON.parse(values['server-provenance']); } catch { throw new UsageError('--server-provenance must be JSON: {"source":…,"registry":…,"entry":…,"version":…,"verified":…}'); }
    try { c.server.provenance = parseProvenance(doc, '--server-provenance'); } catch (e) { throw new UsageError((e as Error).message); }
  }
  if (values['resource-metadata']) c.resourceMetadataUrl = values['resource-metadata'];
  if (values['decision-log']) c.decisionLogDir = values['decision-log'];
  if (values['no-decision-log']) c.decisionLogDir = null;
  if (values['deny-status']) {
    const s = Number(values['deny-status']);
    if (!Number.isInteger(s) || s < 200 || s > 599) throw new UsageError('--deny-status must be an HTTP status (200-599)');
    c.denyStatus = s;
  }
  if (values['upstream-authorization']) c.upstreamAuthorization = values['upstream-authorization'];
  const tlsFlags = [values['tls-cert'], values['tls-key'], values['client-ca']];
  if (tlsFlags.some((v) => v !== undefined)) {
    if (!tlsFlags.every((v) => v !== undefined)) throw new UsageError('mTLS needs all of --tls-cert, --tls-key and --client-ca');
    c.tls = { cert: values['tls-cert'] as string, key: values['tls-key'] as string, clientCa: values['client-ca'] as string, trustDomain: DEFAULT_TRUST_DOMAIN, allowedPeers: [] };
  }
  if (values['trust-domain'] || values['allow-peer']) {
    if (!c.tls) throw new UsageError('--trust-domain and --allow-peer need mTLS (--tls-cert, --tls-key, --client-ca)');
    if (values['trust-domain']) c.tls.trustDomain = values['trust-domain'];
    if (values['allow-peer']) c.tls.allowedPeers = values['allow-peer'];
  }
  const unused = unusedSetting(c);
  if (unused) throw new UsageError(`${unused[0]}: ${unused[1]}`);
  return c;
}

export const authzCommand: Command = {
  name: 'authz',
  summary: 'Run the authz service (Envoy ext_authz + ext_proc over gRPC)',
  async run(argv) {
    const cfg = configFromArgs(argv);
    if (!cfg) { process.stdout.write(USAGE); return 0; }
    const running = await startAuthz(cfg);
    process.stdout.write(`authz listening on ${cfg.listen.host}:${running.port}${cfg.tls ? ' (mTLS)' : ''}\n`);
    await new Promise<void>((resolve) => { process.once('SIGINT', resolve); process.once('SIGTERM', resolve); });
    await running.close();
    return 0;
  },
};
