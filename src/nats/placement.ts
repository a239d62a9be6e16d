/**
 * Regions of a multi-region mesh (docs/multi-region.md): a region is one NATS cluster of a
 * supercluster, named by its cluster name, and a stream is put in a region by JetStream placement.
 */

/** A region name is a NATS cluster name and a bucket-name suffix: kept to a safe alphabet. */
export const REGION_NAME = /^[A-Za-z0-9][A-Za-z0-9-]{0,31}$/;

export function isRegionName(s: string): boolean {
  return REGION_NAME.test(s);
}

/** Stream-config fields placing a stream in `region`'s cluster; none (the server chooses) without one. */
export function placedIn(region: string | null | undefined): { placement: { cluster: string; tags: string[] } } | Record<string, never> {
  return region ? { placement: { cluster: region, tags: [] } } : {};
}
