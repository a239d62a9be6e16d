import { createHash } from 'node:crypto';
import type { KV } from '@nats-io/kv';
import type { BudgetSpec } from '../budget/config.js';
import { DEFINITIONS_KEY, encodeDefinitions, parseDefinitions } from '../budget/definitions.js';

/**
 * The control-plane half of budget definitions over NATS: writes the full list under one key with
 * a revision that only moves forward (compare-and-set on the KV entry), so two control planes or a
 * restart never publish an older list over a newer one. authz replicas follow the key
 * (src/budget/definitions.ts).
 */

export interface PublishResult {
  revision: number;
  /** False when the list equals what is published: nothing was written. */
  changed: boolean;
}

function digest(budgets: readonly BudgetSpec[]): string {
  const sorted = [...budgets].sort((a, b) => a.name.localeCompare(b.name));
  return createHash('sha256').update(JSON.stringify(sorted)).digest('hex');
}

export async function publishDefinitions(cfg: KV, budgets: readonly BudgetSpec[], key = DEFINITIONS_KEY): Promise<PublishResult> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const e = await cfg.get(key);
    let current = { revision: 0, budgets: [] as BudgetSpec[] };
    if (e && e.operation === 'PUT') {
      try {
        current = parseDefinitions(e.value, key);
      } catch {
        // A malformed entry is replaced; its revision is unknown, so count on from the KV sequence.
        current = { revision: e.revision, budgets: [] };
      }
      if (digest(current.budgets) === digest(budgets)) return { revision: current.revision, changed: false };
    }
    const revision = Math.max(current.revision, e?.revision ?? 0) + 1;
    const value = encodeDefinitions({ revision, budgets: [...budgets] });
    try {
      if (e) await cfg.update(key, value, e.revision);
      else await cfg.create(key, value);
      return { revision, changed: true };
    } catch (err) {
      if (!/wrong last sequence|key exists/i.test((err as Error).message)) throw err;
    }
  }
  throw new Error(`could not publish budget definitions: ${key} kept changing under concurrent writers`);
}
