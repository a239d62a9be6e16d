import { join } from 'node:path';
import { loadBudgetConfig, type BudgetConfig } from './config.js';
import { createBudgetGate, type TollgateBudgetGate } from './gate.js';
import { LocalBudgetStore } from './local-store.js';
import { followDefinitions, mergeDefinitions } from './definitions.js';
import { NatsBudgetStore, type NatsStoreLogger } from './nats-store.js';
import type { NatsLink } from '../nats/connect.js';
import { preloadEncodings } from './tokens.js';

export interface OpenBudgetsOptions {
  /** authz state directory; local budget state lives in `<stateDir>/budgets/`. */
  stateDir: string;
  /** Names this replica's leases in NATS (default host-pid-random). */
  replicaId?: string;
  clock?: () => number;
  logger?: NatsStoreLogger & { error?(obj: Record<string, unknown>, msg: string): void; info?(obj: Record<string, unknown>, msg: string): void };
  /** The process's NATS connection; unset: the budgets file's nats.url is connected to on its own. */
  link?: NatsLink | null;
}

export interface OpenedBudgets {
  config: BudgetConfig;
  gate: TollgateBudgetGate;
  /** "nats" when the state is shared through JetStream KV, else "local". */
  mode: 'nats' | 'local';
}

export function localStateDir(stateDir: string): string {
  return join(stateDir, 'budgets');
}

/**
 * Builds the budget gate authz runs with: NATS-shared state when the budgets file has a `nats`
 * section, in-process state persisted under the state directory otherwise. Loads the tokenizers
 * the budgets use, so the first call does not pay for it.
 */
export async function openBudgetGate(configOrFile: BudgetConfig | string, opts: OpenBudgetsOptions): Promise<OpenedBudgets> {
  const config = typeof configOrFile === 'string' ? loadBudgetConfig(configOrFile) : configOrFile;
  preloadEncodings(['o200k_base', ...config.budgets.map((b) => b.tokenizer)]);
  const gateOpts = opts.clock ? { clock: opts.clock } : {};
  if (config.nats) {
    const link = opts.link ?? null;
    const store = await NatsBudgetStore.open(config.budgets, config.nats, link, {
      ...(opts.replicaId ? { replicaId: opts.replicaId } : {}), ...(opts.clock ? { clock: opts.clock } : {}), ...(opts.logger ? { logger: opts.logger } : {}),
      // With a component credential, definitions are the control plane's to record (authz may not).
      recordDefinitions: link?.identity == null,
    });
    const gate = createBudgetGate(config, store, gateOpts);
    if (!config.nats.definitions) return { config, mode: 'nats', gate };
    const logger = opts.logger;
    const follower = await followDefinitions(store.configBucket, {
      apply: async (d) => {
        // A namespaced sidecar takes only its namespace's budgets (and mesh-wide ones): another
        // namespace's are not charged here, and its credential may not write their usage keys.
        const ns = config.nats?.namespace ?? null;
        const mine = ns === null ? d.budgets : d.budgets.filter((b) => b.namespace === undefined || b.namespace === ns);
        const merged = mergeDefinitions(config.budgets, mine);
        if (merged.clashes.length) logger?.warn({ budgets: merged.clashes }, 'published budgets share a name with budgets in the file; the file\'s declarations are kept');
        preloadEncodings(merged.budgets.map((b) => b.tokenizer));
        await store.setSpecs(merged.budgets);
        gate.setBudgets(merged.budgets);
        (logger?.info ?? logger?.warn)?.call(logger, { revision: d.revision, budgets: merged.budgets.length }, 'budget definitions from NATS applied');
      },
      rejected: (problem) => logger?.warn({ problem }, 'published budget definitions refused'),
    }).catch(async (e: Error) => {
      await store.close();
      throw new Error(`cannot follow the published budget definitions in NATS: ${e.message}`, { cause: e });
    });
    const close = gate.close.bind(gate);
    gate.close = async () => {
      await follower.stop();
      await close();
    };
    return { config, mode: 'nats', gate };
  }
  const logger = opts.logger;
  const store = LocalBudgetStore.open(config.budgets, {
    dir: localStateDir(opts.stateDir),
    ...(opts.clock ? { clock: opts.clock } : {}),
    onError: (e) => (logger?.error ?? logger?.warn)?.call(logger, { err: e.message }, 'budget state'),
  });
  return { config, mode: 'local', gate: createBudgetGate(config, store, gateOpts) };
}
