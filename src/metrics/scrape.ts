import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * Instruments whose values are read from elsewhere when Prometheus scrapes (policy source,
 * decision log, budget gate each keep their own counts). Nothing here runs on the Check path.
 */

type Labels = Record<string, string>;

/** A series to expose: its labels (omitted for an unlabelled metric) and its value. */
export interface Sample {
  labels?: Labels;
  value: number;
}

interface ScrapedOptions {
  registry: Registry;
  name: string;
  help: string;
  labelNames?: readonly string[];
  /** Every series the metric has right now; an empty list exposes none. */
  read: () => readonly Sample[];
}

/**
 * reset() leaves an unlabelled metric at 0; with nothing to report (no decision log, no policy
 * source yet) the series should be absent instead, or alerts would read "0" as a real value.
 */
function dropUnlabelled(m: Counter<string> | Gauge<string>, opts: ScrapedOptions): void {
  if ((opts.labelNames ?? []).length === 0) m.remove();
}

/**
 * A counter that mirrors a monotonic count kept by its owner. Reset and refill on each scrape:
 * prom-client counters have no set(), and the owner's number is the truth.
 */
export function scrapedCounter(opts: ScrapedOptions): Counter<string> {
  return new Counter<string>({
    ...metricOptions(opts),
    collect() {
      this.reset();
      refill(this, opts, (labels, v) => (labels ? this.inc(labels, v) : this.inc(v)));
    },
  });
}

/** A gauge whose series are exactly what read() returns at scrape time (stale series vanish). */
export function scrapedGauge(opts: ScrapedOptions): Gauge<string> {
  return new Gauge<string>({
    ...metricOptions(opts),
    collect() {
      this.reset();
      refill(this, opts, (labels, v) => (labels ? this.set(labels, v) : this.set(v)));
    },
  });
}

function metricOptions(opts: ScrapedOptions): { name: string; help: string; labelNames: string[]; registers: Registry[] } {
  return { name: opts.name, help: opts.help, labelNames: [...(opts.labelNames ?? [])], registers: [opts.registry] };
}

/** Writes read()'s samples into a just-reset metric with `put` (inc for counters, set for gauges). */
function refill(m: Counter<string> | Gauge<string>, opts: ScrapedOptions, put: (labels: Labels | undefined, value: number) => void): void {
  const samples = opts.read();
  if (samples.length === 0) return dropUnlabelled(m, opts);
  for (const s of samples) put(s.labels, s.value);
}

/** ISO timestamp → seconds since the epoch, or null when absent or unreadable. */
export function epochSeconds(iso: string | null | undefined): number | null {
  if (!iso) return null;
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? ms / 1000 : null;
}
