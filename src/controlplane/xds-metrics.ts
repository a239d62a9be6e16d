import { Counter, Gauge, Registry } from 'prom-client';
import type { RefusalReason } from '../xds/server.js';
import type { SidecarXds } from './xds.js';

const REASONS: readonly RefusalReason[] = ['no_certificate', 'bad_identity', 'not_registered', 'node_id_mismatch'];

/**
 * The control plane's xDS metrics: refused streams by reason (an alert on any non-zero rate finds
 * a process trying to pose as a sidecar), open streams, known sidecars, and NACKs.
 */
export function xdsMetrics(x: SidecarXds): Registry {
  const registry = new Registry();
  const refused = new Counter({
    name: 'tollgate_xds_refused_streams_total', help: 'ADS streams refused, by reason (no_certificate, bad_identity, not_registered, node_id_mismatch)',
    labelNames: ['reason'], registers: [registry],
  });
  for (const reason of REASONS) refused.inc({ reason }, 0);
  x.ads.onRefusal((e) => refused.inc({ reason: e.reason }));
  const nacks = new Counter({ name: 'tollgate_xds_nacks_total', help: 'Distinct configurations Envoy rejected (NACK)', registers: [registry] });
  x.ads.onNack(() => nacks.inc());
  new Gauge({
    name: 'tollgate_xds_streams', help: 'Open, admitted or not yet identified, ADS streams', registers: [registry],
    collect() { this.set(x.status().streams.length); },
  });
  new Gauge({
    name: 'tollgate_xds_sidecars', help: 'Registered identities with a snapshot (connected, or within the forget grace period)', registers: [registry],
    collect() { this.set(x.registry.known.length); },
  });
  return registry;
}
