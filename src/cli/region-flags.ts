import type { StreamPlacement } from '../controlplane/streams.js';
import { isRegionName } from '../nats/placement.js';
import { UsageError } from './types.js';

/** One region name from a flag: a NATS cluster name (nats/placement.ts). */
function regionName(flag: string, r: string): string {
  if (!isRegionName(r)) throw new UsageError(`${flag}: "${r}" is not a region name (1-32 letters, digits or "-": the region's NATS cluster name)`);
  return r;
}

/**
 * A comma-separated region list (`--budget-regions east,west`): trimmed, deduplicated, each a
 * region name; given but empty is a mistake, not "no regions".
 */
export function regionListFlag(flag: string, value: string | undefined): string[] {
  if (value === undefined) return [];
  const list = value.split(',').map((r) => r.trim()).filter((r) => r !== '').map((r) => regionName(flag, r));
  if (list.length === 0) throw new UsageError(`${flag} needs at least one region name, e.g. ${flag} east,west`);
  return [...new Set(list)];
}

/** --region and --budget-regions of `controlplane serve`. */
export function placementFlags(region: string | undefined, budgetRegions: string | undefined): StreamPlacement {
  const home = region === undefined ? null : regionName('--region', region.trim());
  return { home, budgetRegions: regionListFlag('--budget-regions', budgetRegions) };
}
