import { createHash } from 'node:crypto';
import type { KV } from '@nats-io/kv';
import { BudgetConfigError, BUDGET_NAME, parseBudgetList, type BudgetSpec } from '../budget/config.js';
import { budgetStatusRow, readLimitOverrides } from '../budget/nats-store.js';
import { windowAt } from '../budget/window.js';
import { publishDefinitions } from '../controlplane/budget-definitions.js';
import type { Handler, Outcome } from './reconcile.js';
import type { TokenBudget, TokenBudgetSpec, TokenBudgetStatus } from './types.js';

/**
 * TokenBudget: every TokenBudget in the cluster becomes one budget definition, and the full list is
 * published over NATS for authz replicas to apply live. Status shows the budget's consumption in
 * the current window, read from the shared budget state.
 */

/** The budget's name in NATS and in decision records: namespace and name, within the 64-char limit. */
export function budgetNameOf(b: { metadata: { namespace: string; name: string } }): string {
  const plain = `${b.metadata.namespace}_${b.metadata.name}`.replace(/\./g, '-');
  if (BUDGET_NAME.test(plain)) return plain;
  const hash = createHash('sha256').update(`${b.metadata.namespace}/${b.metadata.name}`).digest('hex').slice(0, 10);
  return `${plain.slice(0, 53)}-${hash}`;
}

/** The definition of one TokenBudget; throws BudgetConfigError naming the field. */
export function definitionOf(b: TokenBudget): BudgetSpec {
  const [spec] = parseBudgetList([{
    name: budgetNameOf(b), namespace: b.metadata.namespace, scope: b.spec.scope, limit: b.spec.limit, window: b.spec.window,
    ...(b.spec.timezone !== undefined ? { timezone: b.spec.timezone } : {}), ...(b.spec.action !== undefined ? { action: b.spec.action } : {}),
  }], `TokenBudget ${b.metadata.namespace}/${b.metadata.name}`);
  return spec!;
}

export interface BudgetDeps {
  /** Every TokenBudget the operator knows of (its informer cache). */
  all: () => TokenBudget[];
  configBucket: KV;
  usageBucket: KV;
  now?: () => number;
}

function definitions(all: TokenBudget[], skip?: string): BudgetSpec[] {
  const out: BudgetSpec[] = [];
  for (const b of all) {
    if (b.metadata.deletionTimestamp || `${b.metadata.namespace}/${b.metadata.name}` === skip) continue;
    try {
      out.push(definitionOf(b));
    } catch {
      // Reported in that budget's own status; the others still publish.
    }
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

export function budgetHandler(d: BudgetDeps): Handler<TokenBudgetSpec, TokenBudgetStatus> {
  const key = (b: TokenBudget): string => `${b.metadata.namespace}/${b.metadata.name}`;
  return {
    kind: 'TokenBudget',
    async converge(b): Promise<Outcome<TokenBudgetStatus>> {
      const name = budgetNameOf(b);
      let def: BudgetSpec;
      try {
        def = definitionOf(b);
      } catch (e) {
        if (!(e instanceof BudgetConfigError)) throw e;
        const message = `not published: ${e.message}`;
        return { status: { budgetName: name }, ready: { status: 'False', reason: 'InvalidSpec', message }, event: { type: 'Warning', reason: 'InvalidSpec', message } };
      }
      // The cache may not have seen this generation yet: the fresh object wins.
      const all = [...d.all().filter((x) => key(x) !== key(b)), b];
      const published = await publishDefinitions(d.configBucket, definitions(all));
      const now = d.now?.() ?? Date.now();
      const row = await budgetStatusRow(d.usageBucket, def, await readLimitOverrides(d.configBucket), now);
      const exhausted = row.used >= row.limit;
      return {
        // `used` counts what replicas reported; tokens leased out but not yet spent are neither
        // used nor remaining, so used + remaining can be below the limit for a sync interval.
        status: { budgetName: name, used: row.used, remaining: row.remaining, windowStart: new Date(windowAt(def.window, def.timezone, now).start).toISOString() },
        ready: { status: 'True', reason: 'Published', message: `published as budget ${name} in definitions revision ${published.revision}` },
        extra: [{ type: 'Exhausted', status: exhausted ? 'True' : 'False', reason: exhausted ? 'LimitReached' : 'WithinLimit', message: `${row.used} of ${row.limit} tokens used in the ${b.spec.window} ${row.windowKey}` }],
      };
    },
    async finalize(b) {
      await publishDefinitions(d.configBucket, definitions(d.all(), key(b)));
    },
  };
}
