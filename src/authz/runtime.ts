import { join } from 'node:path';
import { Registry } from 'prom-client';
import { createVerifier } from '../identity/verifier.js';
import { UpstreamCredentialMinter } from '../identity/upstream-credentials.js';
import { PolicyHolder } from '../policy/holder.js';
import { DirBundleSource } from '../policy/sources/dir.js';
import type { NatsBundleSource } from '../policy/sources/nats.js';
import type { HttpBundleSource } from '../policy/sources/http.js';
import type { BundleSourceStatus } from '../policy/sources/types.js';
import { createDecisionSink } from '../decisionlog/config.js';
import { createInputMasker } from '../decisionlog/mask.js';
import { accountingRecord } from '../decisionlog/accounting.js';
import type { TeeSink } from '../decisionlog/tee.js';
import { version } from '../util/version.js';
import { createLogger, type Logger } from '../util/log.js';
import { Authorizer } from './check.js';
import { unusedSetting, type AuthzConfig } from './config.js';
import { resolvePointerKey } from '../bundle/policy-keys.js';
import { PendingCalls, type PendingCall } from './pending.js';
import { SessionOwners } from './sessions.js';
import type { OpenedBudgets } from '../budget/open.js';
import { ToolAnnotationStore } from '../mcp/annotations.js';
import { createExtProcHandler } from './extproc.js';
import { policyListFilter } from './list-policy.js';
import { AuthzServer } from './server.js';
import { createAuthzMetrics, type AuthzMetrics } from '../metrics/authz-metrics.js';
import { AdminHttpServer } from '../metrics/http.js';
import { createStatusProvider } from '../metrics/status.js';
import { startTracing } from '../telemetry/tracing.js';
import { loadBudgetConfig, withServedNamespace, type BudgetConfig } from '../budget/config.js';
import type { NatsLink } from '../nats/connect.js';
import { resolveProcessNats } from '../nats/settings.js';
import { PinStore } from '../pins/store.js';
import type { NatsPinSource } from '../pins/nats-source.js';
import { pinRecord } from '../pins/admin-record.js';

export interface RunningAuthz {
  readonly port: number;
  readonly holder: PolicyHolder;
  readonly authorizer: Authorizer;
  readonly source: PolicySource;
  readonly decisionLog: TeeSink | null;
  readonly metrics: AuthzMetrics;
  /** The admin listener (/metrics, /healthz, /readyz, /status); null when metrics_listen is unset. */
  readonly admin: AdminHttpServer | null;
  close(): Promise<void>;
}

type PolicySource = DirBundleSource | NatsBundleSource | HttpBundleSource;

/** The policy source the config names: exactly one of dir, NATS (signed bundles), bundle URL. */
async function policySource(cfg: AuthzConfig, holder: PolicyHolder, link: NatsLink | null): Promise<PolicySource> {
  const p = cfg.policy;
  const chosen = [p.dir, p.nats, p.bundleUrl].filter((x) => x !== null).length;
  if (chosen === 0) throw new Error('no policy source configured: give --policies DIR, --policy-nats URL or --bundle-url URL');
  if (chosen > 1) throw new Error('more than one policy source configured: choose one of policy.dir, policy.nats_url, policy.bundle_url');
  const loadOptions = { entrypoint: p.entrypoint };
  if (p.dir) return new DirBundleSource({ holder, dir: p.dir, watch: p.watch, loadOptions });
  // Remote sources and their clients are loaded only when configured: memory is paid per pod.
  const { loadVerificationKeys } = await import('../bundle/keys.js');
  if (p.nats) {
    const { NatsBundleSource } = await import('../policy/sources/nats.js');
    const keys = await loadVerificationKeys(p.nats.verificationKey);
    if (!link) throw new Error('policy from NATS needs a NATS URL: give --nats URL');
    // The highest revision accepted survives restarts: a pointer moved back is refused after one too.
    // `auto`: the key the injector named for this pod's server (docs/kubernetes.md, MCPPolicy).
    const pointerKey = resolvePointerKey(p.nats.pointerKey, process.env);
    return new NatsBundleSource({ holder, nats: link, keys, loadOptions, stateFile: join(cfg.stateDir, 'policy-revision.json'), ...(pointerKey ? { pointerKey } : {}) });
  }
  const { HttpBundleSource } = await import('../policy/sources/http.js');
  return new HttpBundleSource({ holder, url: p.bundleUrl!, loadOptions, ...(p.bundleKey ? { keys: await loadVerificationKeys(p.bundleKey) } : {}) });
}

export type { BundleSourceStatus };

/** Tool pinning: the store Check and the list filter read, fed by the verified pin bucket. */
async function startPins(cfg: AuthzConfig, sink: TeeSink | null, log: Logger, link: NatsLink | null): Promise<{ store: PinStore; source: NatsPinSource }> {
  const p = cfg.pins!;
  const [{ loadVerificationKeys }, { NatsPinSource }] = await Promise.all([import('../bundle/keys.js'), import('../pins/nats-source.js')]);
  const keys = (await loadVerificationKeys(p.approverKey)).map((k) => ({ key: k.key, kid: k.kid, alg: k.alg }));
  const store = new PinStore();
  const source = new NatsPinSource({
    store, keys, nats: link ?? { servers: p.natsUrl }, instance: cfg.instanceId,
    onEvent: (e) => {
      log.info({ pin: e }, 'tool pin change');
      // An approval this instance enforces without a record would be a hole in the audit trail.
      sink?.append(pinRecord(e, { instance: cfg.instanceId, version }));
    },
    onError: (m) => log.warn({ err: m }, 'tool pins'),
  });
  await source.start();
  log.info({ nats: p.natsUrl, approverKeys: keys.length }, 'tool pinning on');
  return { store, source };
}

/**
 * Assembles authz from its config: identity, policy source, decision log, budgets, and the gRPC
 * server. Refuses to start on a config that cannot work, rather than starting and denying.
 */
export async function startAuthz(cfg: AuthzConfig, log: Logger = createLogger('tollgate-authz')): Promise<RunningAuthz> {
  const unused = unusedSetting(cfg);
  if (unused) throw new Error(`authz config: ${unused[0]}: ${unused[1]}`);
  const closers: Array<() => Promise<void>> = [];
  const startedAt = new Date();
  const holder = new PolicyHolder();
  const metrics = createAuthzMetrics(new Registry(), { servers: [cfg.server.name], version });
  const tracing = await startTracing({ serviceName: 'tollgate-authz', version, logger: log });
  log.info({ tracing: tracing.reason }, tracing.enabled ? 'OpenTelemetry tracing on' : 'OpenTelemetry tracing off');
  holder.onSwap((rev) => log.info({ revision: rev }, 'policy loaded'));

  // One NATS connection for the process, shared by the policy source, budgets and the log replica.
  const loaded: BudgetConfig | null = cfg.budgetsFile ? loadBudgetConfig(cfg.budgetsFile) : null;
  // An injected sidecar is told its namespace (--budget-namespace): only that namespace's usage
  // keys are its credential's to write, whatever the ConfigMap's budgets file says.
  const budgetConfig = loaded && cfg.budgetNamespace ? withServedNamespace(loaded, cfg.budgetNamespace, '--budget-namespace') : loaded;
  const natsSettings = resolveProcessNats([
    { field: '--nats (nats.url)', url: cfg.nats.url },
    { field: '--policy-nats (policy.nats_url)', url: cfg.policy.nats?.url },
    { field: '--decision-log-nats (decision_log_nats_url)', url: cfg.decisionLogNatsUrl },
    { field: `${cfg.budgetsFile} nats.url`, url: budgetConfig?.nats?.url },
    { field: '--pins-nats (pins.nats_url)', url: cfg.pins?.natsUrl },
  ], cfg.nats.tls);
  if (!natsSettings && cfg.decisionLogReplicate) throw new Error('decision log replication needs a NATS URL: give --nats URL');
  if (!natsSettings && budgetConfig?.nats) throw new Error(`${cfg.budgetsFile} has a nats section (shared budget state) but no NATS URL is set: give --nats URL`);
  const link = natsSettings ? (await import('../nats/connect.js')).NatsLink.open(natsSettings, { name: `tollgate-authz ${cfg.instanceId}` }) : null;
  // Closers run in reverse: the connection closes after everything that uses it.
  if (link) closers.push(() => link.close());
  if (link) log.info({ servers: natsSettings!.servers, identity: link.identity ?? '(none: NATS without TLS)' }, 'NATS connection');

  const source = await policySource(cfg, holder, link);
  metrics.readFrom({ policy: () => source.status() });
  source.events.on('rejected', (e: unknown) => log.error({ rejection: e }, 'policy bundle rejected; the last good policy keeps serving'));
  await source.start();
  closers.push(() => source.stop());
  // Local mode builds synchronously above; remote sources may still be fetching, and until the
  // first bundle arrives Check refuses every call (fail closed).
  if (!holder.get()) log.warn({ source: source.kind }, 'no policy loaded yet: every call is refused until one is');

  let sink: TeeSink | null = null;
  if (cfg.decisionLogDir) {
    const opened = await createDecisionSink({
      dir: cfg.decisionLogDir,
      signingKeyPath: join(cfg.stateDir, 'decision-log-key.pem'),
      nats: cfg.decisionLogReplicate && link ? { url: link.settings.servers.join(',') } : null,
      ...(cfg.decisionLogWitness !== undefined ? { witnessPath: cfg.decisionLogWitness } : {}),
    }, { warn: (m) => log.warn(m), ...(link ? { link } : {}) });
    sink = opened;
    closers.push(() => opened.close());
    metrics.readFrom({ decisionLog: () => opened.stats() });
  }

  const pending = new PendingCalls();
  const sessions = new SessionOwners();
  const annotations = new ToolAnnotationStore();
  const pins = cfg.pins ? await startPins(cfg, sink, log, link) : null;
  if (pins) closers.push(() => pins.source.stop());
  let budgets: OpenedBudgets | null = null;
  if (cfg.budgetsFile) {
    const { openBudgetGate } = await import('../budget/open.js');
    budgets = await openBudgetGate(budgetConfig ?? cfg.budgetsFile, { stateDir: cfg.stateDir, replicaId: cfg.instanceId, logger: log, link });
    const gate = budgets.gate;
    closers.push(() => gate.close());
    metrics.readFrom({ budgets: () => gate.metrics });
    log.info({ budgets: budgets.config.budgets.length, mode: budgets.mode }, 'budgets loaded');
  }
  const verifier = createVerifier(cfg.identity);
  const upstreamCredentials = cfg.upstreamCredentials ? await UpstreamCredentialMinter.open(cfg.upstreamCredentials, Date.now, (m) => log.warn(m)) : null;
  if (upstreamCredentials) log.info({ audience: cfg.upstreamCredentials!.audience, kid: upstreamCredentials.kid }, 'per-caller upstream credentials on');

  const authorizer = new Authorizer({
    settings: {
      instanceId: cfg.instanceId, version, defaultScope: { server: cfg.server.name, namespace: cfg.server.namespace, provenance: cfg.server.provenance ?? null },
      resourceMetadataUrl: cfg.resourceMetadataUrl, limits: cfg.limits, denyStatus: cfg.denyStatus, upstreamAuthorization: cfg.upstreamAuthorization,
      inputMode: cfg.policy.entrypoint,
    },
    verifier,
    upstreamCredentials,
    policy: holder,
    budget: budgets?.gate ?? null,
    sink,
    pending,
    annotations: (server, tool) => annotations.lookup(server, tool),
    pins: pins?.store.lookup ?? null,
    countTokens: null,
    mask: createInputMasker(),
    clock: Date.now,
    metrics,
    tracer: tracing.checks,
    sessions,
  });

  // ext_proc always runs: it records the tool annotations servers declare, and charges budgets.
  // With a decision log, each answered call's response tokens go into the chain as an
  // accounting record linked to its decision (docs/decision-log.md, "Accounting records").
  const logSink = sink;
  const onCharged = (decisionId: string, tokens: number, call: PendingCall): void => {
    // The whole operation, from the Check to the response's end (mcp_server_operation_duration_seconds).
    metrics.recordOperation({ method: call.method, tool: call.tool, errorType: null, seconds: Math.max(0, Date.now() - call.createdAt) / 1000 });
    if (!logSink) return;
    logSink.account(accountingRecord({
      decisionId, now: new Date(), instance: cfg.instanceId, version,
      identity: { sub: call.subject.sub, team: call.subject.team, agent: call.subject.agent },
      server: call.server, namespace: call.namespace ?? cfg.server.namespace, method: call.method, tool: call.tool,
      requestTokens: call.requestTokens, responseTokens: tokens,
    }));
  };
  const extProc = createExtProcHandler({
    pending, sessions, gate: budgets?.gate ?? null, annotations, filterTool: policyListFilter(holder, pins?.store.lookup ?? null), logger: log,
    onCharged,
    ...(pins ? {
      onToolsListed: (server: string, tools: readonly unknown[]) => { for (const o of pins.store.observe(server, tools)) pins.source.publish(server, o.tool, o); },
      onInstructions: (server: string, text: string) => {
        const f = pins.store.observeInstructions(server, text);
        if (f?.length) log.warn({ server, findings: f }, 'server instructions flagged by the description scanner');
      },
    } : {}),
  });
  metrics.readFrom({ extProc: () => extProc.stats });
  const server = await AuthzServer.start({ host: cfg.listen.host, port: cfg.listen.port, authorizer, extProc, tls: cfg.tls, logger: log });
  log.info({ listen: `${cfg.listen.host}:${server.port}`, mtls: cfg.tls !== null, revision: holder.get()?.revision }, 'authz listening');

  let grpcUp = true;
  const status = createStatusProvider({
    instanceId: cfg.instanceId, version, startedAt,
    grpc: () => ({ listen: `${cfg.listen.host}:${server.port}`, up: grpcUp }),
    policy: () => source.status(),
    decisionLog: () => sink?.stats() ?? null,
    budgets: () => budgets && {
      mode: budgets.mode, budgets: budgets.gate.budgets, metrics: budgets.gate.metrics, remaining: () => metrics.budgetRemaining(),
    },
  });
  const shutdown = async (): Promise<void> => {
    for (const c of closers.reverse()) await c().catch((e: Error) => log.error({ err: e.message }, 'close failed'));
    await tracing.shutdown().catch((e: Error) => log.error({ err: e.message }, 'tracing shutdown failed'));
  };
  let admin: AdminHttpServer | null = null;
  if (cfg.metricsListen) {
    try {
      admin = await AdminHttpServer.start({ ...cfg.metricsListen, registry: metrics.registry, status: status.status, ready: status.readiness });
    } catch (e) {
      // A listening gRPC server would keep the process alive after this error: stop everything.
      await server.close();
      await shutdown();
      throw new Error(`admin listener ${cfg.metricsListen.host}:${cfg.metricsListen.port} (metrics_listen): ${(e as Error).message}`);
    }
    log.info({ listen: admin.url }, 'admin endpoints listening: /metrics /healthz /readyz /status');
  }
  const adminServer = admin;
  return {
    port: server.port,
    holder,
    authorizer,
    source,
    decisionLog: sink,
    metrics,
    admin: adminServer,
    async close() {
      // Not ready first, so probes take this instance out of rotation while in-flight checks finish.
      grpcUp = false;
      await server.close();
      await shutdown();
      await adminServer?.close();
    },
  };
}
