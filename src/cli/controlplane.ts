import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { generateSigningKeyPair, isSigningAlg, loadSigningKey, SIGNING_ALGS } from '../bundle/keys.js';
import { DEFAULT_KV_BUCKET, DEFAULT_OBJECT_BUCKET, DEFAULT_POINTER_KEY } from '../bundle/pointer.js';
import type { PolicyControlPlaneOptions } from '../controlplane/serve.js';
import { parseCommandArgs, parseDuration } from './args.js';
import { NATS_FLAGS, NATS_FLAGS_USAGE, natsSettingsFromFlags } from './nats-flags.js';
import { natsCerts } from './nats-certs.js';
import { placementFlags } from './region-flags.js';
import { UsageError, type Command } from './types.js';
import { dispatch } from './subcommands.js';
import { parseHostPort } from '../util/net.js';
import { DEFAULT_TRUST_DOMAIN } from '../pki/identity.js';

const USAGE = `Usage: tollgate controlplane <subcommand> [flags]

Subcommands:
  serve   Watch a policy directory; build, sign and publish each good build over NATS
  keys    Generate a bundle signing key pair
  nats-certs  Issue the NATS cluster's server and per-component certificates (Kubernetes)

Run \`tollgate controlplane <subcommand> --help\` for its flags. See docs/bundles.md.
`;

const SERVE_USAGE = `Usage: tollgate controlplane serve --policies DIR --signing-key FILE [flags]

Builds DIR with \`opa check --strict\` and \`opa build -t wasm\`, signs the bundle (OPA
.signatures.json format) and publishes it over NATS JetStream as the next revision: bytes in the
object store, the pointer in a KV bucket. Rebuilds whenever DIR changes. A build that fails is
reported with file:line and never published; the previous revision stays in force. A build equal
to the published one publishes nothing. Every authz instance watching the pointer verifies the
signature and swaps the policy in without dropping a request.

  --policies DIR       policy directory (Rego and data.json) to build (required)
  --signing-key FILE   private key, PEM (PKCS#8, PKCS#1, SEC1) or JWK: RSA (RS256), EC P-256
                       (ES256) or Ed25519 (EdDSA); make one with \`tollgate controlplane keys\` (required)
  --key-id ID          key id put in the signature (kid / keyid); default: the JWK's kid, else the
                       RFC 7638 thumbprint of the public key, which authz computes the same way
${NATS_FLAGS_USAGE}
                       (default nats://127.0.0.1:4222; waits up to 60 s for NATS to come up)
  --budgets FILE       record these budget declarations in NATS for \`tollgate budget status\`
                       (authz enforces its own copy; under per-component credentials it may not
                       record them itself)
  --replicas N         JetStream replicas of the streams and buckets it creates: 1 (default), or 3
                       on a three-node cluster (a node's loss then loses nothing)
  --region NAME        multi-region (NATS clusters joined by gateways): place the bundles, the
                       pointer, the decision log, tool pins, budget config and the global budget
                       usage bucket in this region's NATS cluster (its cluster name)
                       (docs/multi-region.md); default: the server chooses
  --budget-regions A,B create a budget usage bucket per region, placed in it, for authz replicas
                       whose budgets file says nats.scope: region (docs/multi-region.md)
  --state DIR          keeps the highest revision published (anti-rollback across restarts)
                       (default $TOLLGATE_STATE_DIR or ./.state)
  --entrypoint PATH    opa build entrypoint, e.g. tollgate/authz/decision; repeatable (default:
                       the entrypoints of the policy contract, docs/policy-input.md)
  --debounce DUR       quiet time after a file change before rebuilding (default 300ms)
  --poll DUR           also re-check DIR this often, for filesystems where change events are
                       missed (default 5s)
  --bucket NAME        JetStream object store for bundles (default ${DEFAULT_OBJECT_BUCKET})
  --kv-bucket NAME     JetStream KV bucket for the pointer (default ${DEFAULT_KV_BUCKET})
  --policy-set NAME    pointer key, one per policy set (default ${DEFAULT_POINTER_KEY})
  --keep N             bundle revisions kept in the object store (default 20, at least 2)
  --scope S            signature scope claim; authz must be configured with the same scope
  --xds-listen H:P     serve xDS (ADS) to Envoy sidecars here, over mTLS (default 127.0.0.1:18000);
                       each sidecar's listener, routes, ext_authz/ext_proc filters and clusters
                       are built from its registration, never from what the sidecar sends
                       (docs/xds.md, docs/security.md)
  --xds-cert FILE      the control plane's certificate (PEM) for xDS        } required
  --xds-key FILE       its private key (PEM)                                 } unless
  --mesh-ca FILE       CA that every sidecar's client certificate must       } --no-xds
                       chain to (PEM)                                        }
  --registrations FILE YAML of the sidecars to serve, by SPIFFE identity     } or
                       (watched; docs/xds.md#registrations)                  }
  --registrations-from-kube  derive the registrations from the API server instead: every pod
                       with the tollgate.dev/injected annotation is served as node
                       <namespace>/<pod>, identity spiffe://<td>/ns/<ns>/sa/<service account>,
                       upstream, ports and authz from its spec and annotations, resource URL
                       from its MCPServer; the workload certificate's CN must name that pod.
                       Deleted or finished pods lose theirs at once. Reaches the API server
                       like --apiserver below (its service account must list and watch pods
                       and mcpservers)
  --trust-domain TD    SPIFFE trust domain of sidecar identities (default tollgate.local)
  --forget-after DUR   drop a sidecar's snapshot this long after its last stream ended
                       (default 60s)
  --metrics-listen H:P serve /metrics (builds, publishes, bundle revision, xDS streams and
                       refusals, tollgate_policy_bundle_build_failures_total: docs/observability.md),
                       /healthz, /readyz and /status (the ADS status; "policy": last published
                       revision and the last refused build with its file:line) here; default: none
  --workload-certs H:P issue workload certificates here (HTTPS, POST /v1/certificates) to pods
                       that present a projected service-account token (audience
                       tollgate-controlplane), checked with the API server (TokenReview; the
                       control plane's service account may create tokenreviews). Serves with
                       --xds-cert/--xds-key; signs with the CA in --ca-dir (docs/security.md)
  --ca-dir DIR         directory with the mesh CA (ca.crt, ca.key) for --workload-certs
  --workload-cert-lifetime DUR  lifetime of each workload certificate issued (default 24h); the
                       pod's tollgate-identity container renews it at half its lifetime
  --apiserver URL      API server for TokenReview and --registrations-from-kube (default:
                       in-cluster)
  --apiserver-token F  bearer token file for it        } default: the pod's own service
  --apiserver-ca F     its CA certificate (PEM)        } account credentials
                       (the only CA trusted; one without a PEM certificate is refused;
                       required with --apiserver and --workload-certs)
  --no-xds             do not serve xDS (bundles only)
  --issuer URL         token issuer announced in each server's RFC 9728 metadata
                       (default http://127.0.0.1:5556)
  --authz H:P          authz address for sidecars whose metadata names none (default 127.0.0.1:9191)
  --authz-timeout DUR  ext_authz deadline in every sidecar; past it the call is denied (default 1s)
  --sidecar-config F   YAML of sidecar defaults (authz, authz_timeout_ms, max_request_bytes, issuer,
                       ext_proc, listen_host), watched: a change is pushed to every sidecar live
  --otel-collector H:P every sidecar's Envoy traces each MCP request and ext_authz Check with its
                       OpenTelemetry tracer and exports the spans over OTLP/gRPC to this collector
                       (usually port 4317); authz continues the same trace (docs/observability.md)
  --otel-sample-percent N  share of new traces (no sampled traceparent from the client) Envoy
                       samples, 0-100 (default 100)
  --once               build and publish once, then exit: 0 when published or unchanged,
                       1 when the build or the publish failed (for CI)
  -h, --help           show this help
`;

const KEYS_USAGE = `Usage: tollgate controlplane keys --out DIR [--alg EdDSA|ES256|RS256] [--force]

Generates a key pair for signing policy bundles, for development and first setup:
  DIR/bundle-signing.key.pem   private key, PKCS#8 (mode 0600): for \`controlplane serve --signing-key\`
  DIR/bundle-signing.pub.pem   public key, SPKI: for authz's verification key (and \`opa --verification-key\`)
and prints the key id (RFC 7638 thumbprint) both sides will use.

  --out DIR      directory to write to (created if missing) (required)
  --alg ALG      EdDSA (Ed25519, default), ES256 (EC P-256) or RS256 (RSA 3072)
  --force        overwrite existing key files
  -h, --help     show this help
`;

function log(line: string): void {
  process.stderr.write(`${new Date().toISOString()} controlplane ${line}\n`);
}

function samplePercent(v: string | undefined): number {
  if (v === undefined) return 100;
  const n = Number(v);
  if (!/^\d+(\.\d+)?$/.test(v) || !(n >= 0 && n <= 100)) throw new UsageError(`--otel-sample-percent must be a number from 0 to 100, got "${v}"`);
  return n;
}

function durationMs(flag: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const ms = Math.round(parseDuration(v) * 1000);
  if (!(ms > 0)) throw new UsageError(`--${flag} must be more than 0`);
  return ms;
}

/** --apiserver and its credentials, or null: in-cluster. */
function apiAccessFlags(values: { apiserver?: string; 'apiserver-token'?: string; 'apiserver-ca'?: string }): { server: string; tokenFile?: string; caFile?: string } | null {
  if (!values.apiserver) return null;
  return { server: values.apiserver, ...(values['apiserver-token'] ? { tokenFile: values['apiserver-token'] } : {}), ...(values['apiserver-ca'] ? { caFile: values['apiserver-ca'] } : {}) };
}

async function serve(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs(argv, {
    policies: { type: 'string' },
    'signing-key': { type: 'string' },
    'key-id': { type: 'string' },
    'xds-listen': { type: 'string' }, 'no-xds': { type: 'boolean' }, issuer: { type: 'string' }, authz: { type: 'string' },
    'authz-timeout': { type: 'string' }, 'sidecar-config': { type: 'string' },
    'xds-cert': { type: 'string' }, 'xds-key': { type: 'string' }, 'mesh-ca': { type: 'string' }, registrations: { type: 'string' },
    'registrations-from-kube': { type: 'boolean' },
    'trust-domain': { type: 'string' }, 'forget-after': { type: 'string' }, 'metrics-listen': { type: 'string' },
    'otel-collector': { type: 'string' }, 'otel-sample-percent': { type: 'string' },
    'workload-certs': { type: 'string' }, 'ca-dir': { type: 'string' }, 'workload-cert-lifetime': { type: 'string' }, apiserver: { type: 'string' }, 'apiserver-token': { type: 'string' },
    'apiserver-ca': { type: 'string' },
    ...NATS_FLAGS, state: { type: 'string' }, budgets: { type: 'string' }, replicas: { type: 'string' },
    region: { type: 'string' }, 'budget-regions': { type: 'string' },
    entrypoint: { type: 'string', multiple: true },
    debounce: { type: 'string' },
    poll: { type: 'string' },
    bucket: { type: 'string' },
    'kv-bucket': { type: 'string' },
    'policy-set': { type: 'string' },
    keep: { type: 'string' },
    scope: { type: 'string' },
    once: { type: 'boolean' },
  });
  if (values.help) { process.stdout.write(SERVE_USAGE); return 0; }
  if (!values.policies) throw new UsageError('--policies DIR is required');
  if (!values['signing-key']) throw new UsageError('--signing-key FILE is required (make one with `tollgate controlplane keys --out DIR`)');
  const dir = resolve(values.policies);
  if (!existsSync(dir)) throw new UsageError(`--policies: ${dir} does not exist`);
  const keep = values.keep === undefined ? 20 : Number(values.keep);
  if (!Number.isInteger(keep) || keep < 2) throw new UsageError('--keep must be an integer of at least 2');
  if (values['workload-certs'] && (values['no-xds'] || values.once || !values['ca-dir'])) {
    throw new UsageError('--workload-certs needs --ca-dir and the xDS certificate flags (not --no-xds or --once)');
  }
  if (values['workload-cert-lifetime'] !== undefined && !values['workload-certs']) throw new UsageError('--workload-cert-lifetime goes with --workload-certs');
  // The control plane's own token goes to that API server: checked against its CA only, never the system's (util/pem-ca.ts).
  if (values['workload-certs'] && values.apiserver && !values['apiserver-ca']) throw new UsageError('--workload-certs with --apiserver needs --apiserver-ca FILE (the API server\'s CA certificate)');
  const certLifetimeMs = durationMs('workload-cert-lifetime', values['workload-cert-lifetime'], 86_400_000);
  if (certLifetimeMs < 1000) throw new UsageError('--workload-cert-lifetime must be at least 1s');
  if (values['metrics-listen'] && values.once) throw new UsageError('--metrics-listen serves a running control plane\'s metrics; it cannot be combined with --once');
  const fromKube = values['registrations-from-kube'] ?? false;
  if (!values['no-xds'] && !values.once) {
    if (fromKube && values.registrations) throw new UsageError('give --registrations FILE or --registrations-from-kube, not both');
    const needed: ('xds-cert' | 'xds-key' | 'mesh-ca' | 'registrations')[] = ['xds-cert', 'xds-key', 'mesh-ca', ...(fromKube ? [] : ['registrations' as const])];
    const missing = needed.filter((f) => !values[f as 'xds-cert']);
    if (missing.length) {
      const what = missing.map((f) => (f === 'registrations' ? '--registrations (or --registrations-from-kube)' : `--${f}`));
      throw new UsageError(`xDS is served over mTLS only: give ${what.join(', ')} (or --no-xds); see docs/security.md`);
    }
    for (const f of needed) {
      if (!existsSync(values[f] as string)) throw new UsageError(`--${f}: ${values[f]} does not exist`);
    }
  } else if (fromKube) throw new UsageError('--registrations-from-kube configures xDS: it cannot be combined with --no-xds or --once');
  const signingKey = await loadSigningKey(values['signing-key'], values['key-id'] !== undefined ? { kid: values['key-id'] } : {});
  const settings = natsSettingsFromFlags(values, 'nats://127.0.0.1:4222')!;
  const replicas = values.replicas === undefined ? 1 : Number(values.replicas);
  if (![1, 3, 5].includes(replicas)) throw new UsageError('--replicas must be 1, 3 or 5');
  const placement = placementFlags(values.region, values['budget-regions']);
  const stateDir = resolve(values.state ?? process.env.TOLLGATE_STATE_DIR ?? '.state');
  const { NatsLink } = await import('../nats/connect.js');
  const link = NatsLink.open(settings, { name: 'tollgate-controlplane' });

  const opts: PolicyControlPlaneOptions = {
    policiesDir: dir,
    signingKey,
    nats: link,
    stateFile: join(stateDir, 'controlplane-revision.json'),
    debounceMs: durationMs('debounce', values.debounce, 300),
    pollMs: durationMs('poll', values.poll, 5000),
    publisher: {
      objectBucket: values.bucket ?? DEFAULT_OBJECT_BUCKET,
      kvBucket: values['kv-bucket'] ?? DEFAULT_KV_BUCKET,
      pointerKey: values['policy-set'] ?? DEFAULT_POINTER_KEY,
      keep,
      replicas,
      region: placement.home,
    },
  };
  if (values.entrypoint) opts.entrypoints = values.entrypoint;
  if (values.scope !== undefined) opts.scope = values.scope;

  // Loaded here so `controlplane keys` does not pull in NATS and the build toolchain.
  const { PolicyControlPlane } = await import('../controlplane/serve.js');
  const cp = new PolicyControlPlane(opts);
  let failed = false;
  cp.on('built', (e) => log(`built ${dir} in ${Math.round(e.durationMs)} ms (${e.files} files, content ${e.contentSha256.slice(0, 12)})`));
  cp.on('unchanged', (e) => log(`unchanged: revision ${e.revision} already has this content`));
  const { archiveRevision } = await import('../controlplane/revision-archive.js');
  cp.on('published', (e) => {
    log(`published revision ${e.pointer.revision} as ${e.pointer.object} (${e.pointer.size} bytes, content ${e.pointer.content_sha256.slice(0, 12)}, signed by ${e.pointer.kid})`);
    // What revision N contained, for tollgate policy show --revision N.
    try { archiveRevision(stateDir, e.pointer, e.sources); } catch (err) { log(`cannot archive the sources of revision ${e.pointer.revision}: ${(err as Error).message}`); }
  });
  cp.on('build-failed', (e) => { failed = true; log(`build failed, nothing published:\n${e.message}`); });
  cp.on('publish-failed', (e) => { failed = true; log(`publish failed (retrying in ${e.retryInMs} ms): ${e.message}`); });
  cp.on('pointer-corrected', (e) => log(`ALERT pointer tampered with: found ${e.found}; ${e.corrected ? `put back revision ${e.restored}` : e.restored === null ? 'nothing trusted to put back yet' : 'could not put it back (it moved again); re-checking'}`));

  log(`signing with ${signingKey.alg} key ${signingKey.kid}; connecting to ${settings.servers.join(',')}${settings.tls ? ' (TLS, client certificate)' : ''}`);
  const { provisionStreams } = await import('../controlplane/streams.js');
  try {
    const nc = await link.ready(60_000);
    // A fresh cluster elects its JetStream leader first: retry for a while before giving up.
    for (let attempt = 1; ; attempt++) {
      try {
        await provisionStreams(nc, log, replicas, placement);
        break;
      } catch (e) {
        if (attempt >= 30) throw new Error(`cannot create the mesh's streams: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    if (values.budgets) {
      const { loadBudgetConfig, DEFAULT_NATS_SETTINGS } = await import('../budget/config.js');
      const { publishBudgetDefinitions } = await import('../budget/nats-store.js');
      const b = loadBudgetConfig(values.budgets);
      await publishBudgetDefinitions(nc, b.nats ?? DEFAULT_NATS_SETTINGS, b.budgets);
      log(`recorded ${b.budgets.length} budget declarations from ${values.budgets}`);
    }
  } catch (e) {
    await link.close();
    throw e;
  }
  if (values.once) {
    // A one-shot run must not wait for a retry, so publish failures end it.
    try {
      await cp.start();
      await cp.stop();
    } finally {
      await link.close();
    }
    return failed ? 1 : 0;
  }
  let xds: import('../controlplane/xds.js').SidecarXds | null = null;
  let kubeRegs: import('../k8s/registration-watch.js').KubeRegistrations | null = null;
  let admin: import('../metrics/http.js').AdminHttpServer | null = null;
  if (!values['no-xds']) {
    const { SidecarXds } = await import('../controlplane/xds.js');
    const listen = parseHostPort(values['xds-listen'] ?? '127.0.0.1:18000');
    xds = await SidecarXds.start({
      host: listen.host, port: listen.port, configFile: values['sidecar-config'], log,
      tls: { cert: values['xds-cert'] as string, key: values['xds-key'] as string, ca: values['mesh-ca'] as string },
      trustDomain: values['trust-domain'] ?? DEFAULT_TRUST_DOMAIN, ...(values.registrations ? { registrationsFile: values.registrations } : {}),
      forgetAfterMs: durationMs('forget-after', values['forget-after'], 60_000),
      defaults: {
        authz: parseHostPort(values.authz ?? '127.0.0.1:9191'), authzTimeoutMs: durationMs('authz-timeout', values['authz-timeout'], 1000),
        maxRequestBytes: 1024 * 1024, issuer: values.issuer ?? 'http://127.0.0.1:5556', extProc: true, listenHost: '127.0.0.1',
        ...(values['otel-collector'] ? { tracing: { collector: parseHostPort(values['otel-collector']), samplePercent: samplePercent(values['otel-sample-percent']) } } : {}),
      },
    });
    log(`xDS (ADS) listening on ${xds.ads.address}`);
    if (fromKube) {
      const { KubeRegistrations } = await import('../k8s/registration-watch.js');
      const { kubeConfigFor } = await import('../k8s/kubeconfig.js');
      const registry = xds.registry;
      kubeRegs = await KubeRegistrations.start({
        kc: kubeConfigFor(apiAccessFlags(values)), trustDomain: values['trust-domain'] ?? DEFAULT_TRUST_DOMAIN, listenHost: '0.0.0.0',
        apply: (regs) => registry.setRegistrations(regs), log,
      });
    }
  }
  if (values['metrics-listen']) {
    const { Registry } = await import('prom-client');
    const { controlPlaneMetrics } = await import('../controlplane/cp-metrics.js');
    const { PolicyBuildTracker } = await import('../controlplane/build-status.js');
    const { AdminHttpServer } = await import('../metrics/http.js');
    const { version } = await import('../util/version.js');
    const buildRegistry = new Registry();
    const builds = new PolicyBuildTracker(cp, buildRegistry);
    const registries = [controlPlaneMetrics(cp, { version }), buildRegistry];
    const x = xds;
    if (x) registries.push((await import('../controlplane/xds-metrics.js')).xdsMetrics(x));
    const m = parseHostPort(values['metrics-listen']);
    admin = await AdminHttpServer.start({
      host: m.host, port: m.port, registry: Registry.merge(registries),
      // The ADS status document, with the policy pipeline's beside it (last refused build included).
      status: () => ({ ...(x ? x.status() : {}), policy: { ...cp.status(), ...builds.status() } }), ready: () => true,
    });
    log(`metrics on ${admin.url}/metrics`);
  }
  let certServer: import('../controlplane/workload-certs.js').WorkloadCertServer | null = null;
  if (values['workload-certs']) {
    const wc = await import('../controlplane/workload-certs.js');
    const { LocalPki } = await import('../pki/index.js');
    const { readFileSync } = await import('node:fs');
    const { readCaFile } = await import('../util/pem-ca.js');
    const flags = apiAccessFlags(values);
    const tokenFile = flags?.tokenFile;
    // Re-read for every review: a projected token in that file is rotated by the kubelet.
    const access = flags
      ? { server: flags.server, token: tokenFile ? () => readFileSync(tokenFile, 'utf8').trim() : '', ca: flags.caFile ? readCaFile(flags.caFile, `--apiserver-ca ${flags.caFile}`) : '' }
      : wc.inClusterAccess();
    const at = parseHostPort(values['workload-certs']);
    certServer = await wc.WorkloadCertServer.start({
      host: at.host, port: at.port, tls: { cert: values['xds-cert'] as string, key: values['xds-key'] as string, ca: values['mesh-ca'] as string },
      pki: await LocalPki.open(values['ca-dir'] as string), reviewer: wc.apiServerReviewer(access),
      trustDomain: values['trust-domain'] ?? DEFAULT_TRUST_DOMAIN, lifetimeMs: certLifetimeMs, log,
    });
    log(`workload certificates on https://${at.host}:${certServer.port}/v1/certificates`);
  }
  await cp.start();
  log(`watching ${dir}`);
  await new Promise<void>((r) => { process.once('SIGINT', r); process.once('SIGTERM', r); });
  await cp.stop();
  await certServer?.close();
  await admin?.close();
  await kubeRegs?.stop();
  await xds?.stop();
  await link.close();
  return 0;
}

async function keys(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs(argv, { out: { type: 'string' }, alg: { type: 'string' }, force: { type: 'boolean' } });
  if (values.help) { process.stdout.write(KEYS_USAGE); return 0; }
  if (!values.out) throw new UsageError('--out DIR is required');
  const alg = values.alg ?? 'EdDSA';
  if (!isSigningAlg(alg)) throw new UsageError(`--alg must be one of ${SIGNING_ALGS.join(', ')}`);
  const dir = resolve(values.out);
  const privPath = join(dir, 'bundle-signing.key.pem');
  const pubPath = join(dir, 'bundle-signing.pub.pem');
  if (!values.force) {
    for (const p of [privPath, pubPath]) if (existsSync(p)) throw new UsageError(`${p} exists; pass --force to overwrite it`);
  }
  const pair = await generateSigningKeyPair(alg);
  await mkdir(dir, { recursive: true });
  await writeFile(privPath, pair.privatePem, { mode: 0o600 });
  await writeFile(pubPath, pair.publicPem, { mode: 0o644 });
  process.stdout.write([
    `${alg} key pair written:`,
    `  private (sign):   ${privPath}`,
    `  public (verify):  ${pubPath}`,
    `  key id:           ${pair.kid}`,
    '',
    `Control plane: tollgate controlplane serve --signing-key ${privPath} --policies DIR`,
    `Authz: configure ${pubPath} as a bundle verification key.`,
    '',
  ].join('\n'));
  return 0;
}

export const controlplaneCommand: Command = {
  name: 'controlplane',
  summary: 'Build, sign and publish policy bundles; serve xDS to sidecars',
  async run(argv) {
    const subs: Record<string, (rest: string[]) => Promise<number>> = { serve, keys, 'nats-certs': natsCerts };
    return dispatch({ command: 'controlplane', usage: USAGE, names: Object.keys(subs) }, argv, (sub, rest) => subs[sub]!(rest));
  },
};
