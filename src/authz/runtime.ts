import { join } from 'node:path';
import { createVerifier } from '../identity/verifier.js';
import { PolicyHolder } from '../policy/holder.js';
import { buildPolicyBundle } from '../policy/build.js';
import { readBundle } from '../policy/bundle.js';
import { loadPolicy, type WasmPolicy } from '../policy/engine.js';
import { FileDecisionSink } from '../decisionlog/file-sink.js';
import { createInputMasker } from '../decisionlog/mask.js';
import type { DecisionSink } from '../decisionlog/types.js';
import { version } from '../cli/version.js';
import { createLogger, type Logger } from '../util/log.js';
import { Authorizer, type CheckDeps } from './check.js';
import type { AuthzConfig } from './config.js';
import { PendingCalls } from './pending.js';
import { AuthzServer } from './server.js';

export interface RunningAuthz {
  readonly port: number;
  readonly holder: PolicyHolder;
  readonly authorizer: Authorizer;
  close(): Promise<void>;
}

/** Builds and loads a policy directory once (local mode). */
export async function loadPolicyDir(dir: string, entrypoint: 'tollgate' | 'envoy'): Promise<WasmPolicy> {
  const bundle = await buildPolicyBundle(dir);
  return loadPolicy(await readBundle(bundle), { entrypoint });
}

/**
 * Assembles authz from its config: identity, policy source, decision log, budgets, and the gRPC
 * server. Refuses to start on a config that cannot work, rather than starting and denying.
 */
export async function startAuthz(cfg: AuthzConfig, log: Logger = createLogger('tollgate-authz')): Promise<RunningAuthz> {
  const closers: Array<() => Promise<void>> = [];
  const holder = new PolicyHolder();
  let policyMask: CheckDeps['policyMask'] = null;
  holder.onSwap((rev) => log.info({ revision: rev }, 'policy loaded'));

  if (cfg.policy.dir) {
    const p = await loadPolicyDir(cfg.policy.dir, cfg.policy.entrypoint);
    holder.swap(p);
  } else {
    throw new Error('no policy source configured: give --policies DIR (or policy.dir in the config file)');
  }
  policyMask = (input) => {
    const p = holder.get() as Partial<WasmPolicy> | null;
    return p && typeof p.evaluateMask === 'function' ? p.evaluateMask(input) : undefined;
  };

  let sink: DecisionSink | null = null;
  if (cfg.decisionLogDir) {
    const fileSink = FileDecisionSink.open({
      dir: cfg.decisionLogDir,
      maxFileBytes: 64 * 1024 * 1024,
      checkpointEvery: 1000,
      checkpointIntervalMs: 10_000,
      signingKeyPath: join(cfg.stateDir, 'decision-log-key.json'),
      fsync: 'checkpoint',
      warn: (m) => log.warn(m),
    });
    sink = fileSink;
    closers.push(() => fileSink.close());
  }

  const pending = new PendingCalls();
  const authorizer = new Authorizer({
    settings: {
      instanceId: cfg.instanceId, version, defaultScope: { server: cfg.server.name, namespace: cfg.server.namespace },
      resourceMetadataUrl: cfg.resourceMetadataUrl, limits: cfg.limits, denyStatus: cfg.denyStatus, upstreamAuthorization: cfg.upstreamAuthorization,
    },
    verifier: createVerifier(cfg.identity),
    policy: holder,
    budget: null,
    sink,
    pending,
    annotations: null,
    countTokens: null,
    mask: createInputMasker(),
    policyMask,
    clock: Date.now,
  });

  const server = await AuthzServer.start({ host: cfg.listen.host, port: cfg.listen.port, authorizer });
  log.info({ listen: `${cfg.listen.host}:${server.port}`, revision: holder.get()?.revision }, 'authz listening');
  return {
    port: server.port,
    holder,
    authorizer,
    async close() {
      await server.close();
      for (const c of closers.reverse()) await c().catch((e: Error) => log.error({ err: e.message }, 'close failed'));
    },
  };
}
