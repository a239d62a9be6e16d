import type { EventEmitter } from 'node:events';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ControlPlaneEvents } from './serve.js';

/**
 * The control plane's own metrics: policy builds and their failures, publishes and their
 * failures, the bundle revision it last published (or found already published), and pointer
 * corrections (an alert: someone moved the pointer). Counted from the control plane's events, so
 * nothing here runs on a sidecar's or authz's path.
 */
export function controlPlaneMetrics(cp: EventEmitter<ControlPlaneEvents>, opts: { version?: string; processMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  const p = 'tollgate_controlplane_';
  if (opts.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  if (opts.version) {
    new Gauge({ name: 'tollgate_build_info', help: 'Tollgate version running (value 1).', labelNames: ['version'], registers: [registry] }).set({ version: opts.version }, 1);
  }
  const builds = new Counter({ name: `${p}builds_total`, help: 'Policy builds (opa check + opa build -t wasm) by result: ok or failed', labelNames: ['result'], registers: [registry] });
  for (const result of ['ok', 'failed']) builds.inc({ result }, 0);
  const buildSeconds = new Histogram({
    name: `${p}build_duration_seconds`, help: 'Duration of successful policy builds', buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: [registry],
  });
  const publishes = new Counter({ name: `${p}publishes_total`, help: 'Bundle publishes to NATS by result: published, unchanged (content already published) or failed (retried)', labelNames: ['result'], registers: [registry] });
  for (const result of ['published', 'unchanged', 'failed']) publishes.inc({ result }, 0);
  const corrections = new Counter({ name: `${p}pointer_corrections_total`, help: 'Times the bundle pointer was found moved to something this control plane did not publish (an alert)', registers: [registry] });
  const revision = new Gauge({ name: `${p}bundle_revision`, help: 'Bundle revision in force on NATS as this control plane last published or confirmed it (absent before the first)', registers: [registry] });
  revision.remove();
  const lastPublish = new Gauge({ name: `${p}last_publish_timestamp_seconds`, help: 'When this control plane last published a revision (Unix time; absent before the first)', registers: [registry] });
  lastPublish.remove();

  cp.on('built', (e) => { builds.inc({ result: 'ok' }); buildSeconds.observe(e.durationMs / 1000); });
  cp.on('build-failed', () => builds.inc({ result: 'failed' }));
  cp.on('published', (e) => { publishes.inc({ result: 'published' }); revision.set(e.pointer.revision); lastPublish.set(Date.now() / 1000); });
  cp.on('unchanged', (e) => { publishes.inc({ result: 'unchanged' }); revision.set(e.revision); });
  cp.on('publish-failed', () => publishes.inc({ result: 'failed' }));
  cp.on('pointer-corrected', () => corrections.inc());
  return registry;
}
