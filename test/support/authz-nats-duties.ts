import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import type { BudgetConfig } from '../../src/budget/config.js';
import type { VerificationKey } from '../../src/bundle/keys.js';
import { NatsBudgetStore } from '../../src/budget/nats-store.js';
import { windowAt } from '../../src/budget/window.js';
import { createDecisionSink } from '../../src/decisionlog/config.js';
import type { NatsReplica } from '../../src/decisionlog/nats-sink.js';
import type { NatsLink } from '../../src/nats/connect.js';
import { PolicyHolder } from '../../src/policy/holder.js';
import { NatsBundleSource } from '../../src/policy/sources/nats.js';
import { sampleDraft } from '../unit/decisionlog/fixtures.js';
import { toolInput, waitFor } from '../integration/controlplane/support.js';

/**
 * What an authz credential must be able to do over NATS, through the real capabilities: follow
 * signed bundles (revision 1, allowing tool `a`), hold a lease on the first budget, and replicate
 * one decision record (`record` names its namespace and server).
 */
export async function assertAuthzNatsDuties(o: {
  link: NatsLink; natsUrl: string; verification: VerificationKey; budgets: BudgetConfig; work: string; record: { namespace?: string; server: string };
}): Promise<void> {
  const holder = new PolicyHolder();
  const source = new NatsBundleSource({ holder, nats: o.link, keys: [o.verification], retryMs: 200 });
  await source.start();
  try {
    assert.equal(await source.whenLoaded(), '1');
    assert.equal(holder.get()!.evaluate(toolInput('a')).allow, true);
  } finally {
    await source.stop();
  }
  const store = await NatsBudgetStore.open(o.budgets.budgets, o.budgets.nats!, o.link, { recordDefinitions: false });
  try {
    const spec = o.budgets.budgets[0]!;
    await store.prepare(spec, windowAt(spec.window, spec.timezone, Date.now())); // a caller's first call under it
    assert.ok((store.leaseOf(spec.name, windowAt(spec.window, spec.timezone, Date.now()).key)?.amount ?? 0) > 0, 'authz holds a lease');
  } finally {
    await store.close();
  }
  const sink = await createDecisionSink({ dir: join(o.work, 'decisions'), nats: { url: o.natsUrl, queueDir: join(o.work, 'spool') } }, { link: o.link, warn: () => undefined });
  try {
    sink.append(sampleDraft({ i: 1, ...o.record }));
    const replica = sink.replicas[0] as NatsReplica;
    await waitFor(() => replica.stats().ackedSeq >= 1, 'the record replicated', () => replica.stats());
  } finally {
    await sink.close();
  }
}
