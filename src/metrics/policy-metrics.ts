import type { Registry } from 'prom-client';
import type { BundleSourceStatus } from '../policy/sources/types.js';
import { epochSeconds, scrapedCounter, scrapedGauge, type Sample } from './scrape.js';

/** What the policy metrics read: a bundle source's status (every source kind has one). */
export type PolicyState = Pick<BundleSourceStatus, 'revision' | 'loadedAt' | 'swaps' | 'rejections' | 'lastError' | 'sourceError' | 'rollbacks'>;

const NONE: readonly Sample[] = [];

/** Revision in force, load and rejection history, source health: all read at scrape time. */
export function registerPolicyMetrics(registry: Registry, prefix: string, read: () => PolicyState | null): void {
  const one = (f: (s: PolicyState) => number | null): readonly Sample[] => {
    const s = read();
    const v = s ? f(s) : null;
    return v === null ? NONE : [{ value: v }];
  };

  scrapedGauge({
    registry, name: `${prefix}policy_revision_info`, labelNames: ['revision'],
    help: 'Policy bundle revision in force on this instance (value 1; absent until a first policy loads).',
    read: () => {
      const rev = read()?.revision;
      return rev ? [{ labels: { revision: rev }, value: 1 }] : NONE;
    },
  });
  scrapedGauge({
    registry, name: `${prefix}policy_loaded`,
    help: '1 when a policy is loaded, 0 while every call is refused for lack of one (fail closed).',
    read: () => [{ value: read()?.revision ? 1 : 0 }],
  });
  scrapedGauge({
    registry, name: `${prefix}policy_last_load_timestamp_seconds`,
    help: 'When the policy in force was loaded (Unix seconds).',
    read: () => one((s) => epochSeconds(s.loadedAt)),
  });
  scrapedCounter({
    registry, name: `${prefix}policy_swaps_total`,
    help: 'Policy bundles activated since start (the first load included).',
    read: () => one((s) => s.swaps),
  });
  scrapedCounter({
    registry, name: `${prefix}policy_bundle_rejections_total`,
    help: 'Policy bundles refused since start (bad signature or hash, failed build or load, not newer); the last good policy kept serving.',
    read: () => one((s) => s.rejections),
  });
  scrapedCounter({
    registry, name: `${prefix}policy_rollbacks_refused_total`,
    help: 'Bundles refused as older than a revision this instance already accepted (also across restarts): the pointer was moved back. Alert on any increase.',
    read: () => one((s) => s.rollbacks ?? 0),
  });
  scrapedGauge({
    registry, name: `${prefix}policy_last_rejection_timestamp_seconds`,
    help: 'When the latest policy bundle was refused (Unix seconds); absent if none was.',
    read: () => one((s) => epochSeconds(s.lastError?.at)),
  });
  scrapedGauge({
    registry, name: `${prefix}policy_source_up`,
    help: '1 when the policy source (directory, NATS, bundle server) is reachable, 0 when it is not.',
    read: () => one((s) => (s.sourceError === null ? 1 : 0)),
  });
}
