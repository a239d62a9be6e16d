import { connect } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import type { NatsBudgetSettings } from '../../../src/budget/config.js';
import { decodeUsageState, type UsageState } from '../../../src/budget/lease.js';
import type { ChargeSubject } from '../../../src/budget/types.js';

/** Shared by the budget integration tests: one caller, one fixed instant, repeatable sizes. */

export const pause = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Deterministic pseudo-random sizes (the run is repeatable). */
export function sizes(seed: number): () => number {
  let x = seed;
  return () => { x = (x * 1103515245 + 12345) & 0x7fffffff; return x; };
}

export const team: ChargeSubject = { team: 'payments', agent: 'bot', sub: 'alice', server: 'ledger', tool: 'query' };
export const T0 = Date.parse('2031-03-12T12:00:00Z');

/** The usage entry of `key` as NATS holds it, read on a connection of its own. */
export async function readEntry(settings: NatsBudgetSettings, key: string): Promise<UsageState> {
  const nc = await connect({ servers: settings.url });
  try {
    const kv = await new Kvm(nc).open(settings.bucket);
    const e = await kv.get(key);
    return decodeUsageState(e ? new TextDecoder().decode(e.value) : '{}');
  } finally {
    await nc.close();
  }
}
