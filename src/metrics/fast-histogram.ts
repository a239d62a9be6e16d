import { Histogram, type Registry } from 'prom-client';

/** One exposition line of a histogram, in the shape prom-client's registry formats. */
interface HistogramLine {
  labels: Record<string, string | number>;
  sharedLabels: Record<string, string | number>;
  value: number;
  metricName: string;
}

interface HistogramData {
  name: string;
  help: string;
  type: 'histogram';
  values: HistogramLine[];
  aggregator: 'sum';
}

export interface FastHistogramOptions {
  name: string;
  help: string;
  /** Upper bounds in seconds, ascending. */
  buckets: readonly number[];
  registry: Registry;
}

/**
 * An unlabelled histogram whose record() is a bucket scan and three additions on typed arrays.
 *
 * prom-client's own observe() allocates and hashes labels on every call (a few hundred ns), which
 * the Check path should not pay. Observations land here instead; the registry reads them at scrape
 * time. Only the read side depends on how prom-client's registry asks a histogram for its lines
 * (getForPromString, with get() built on it); the exposition test pins that down.
 */
export class FastHistogram extends Histogram<string> {
  private readonly bounds: Float64Array;
  /** Per bucket, not cumulative; the last slot is above the largest bound (+Inf). */
  private readonly counts: Float64Array;
  private total = 0;
  private observations = 0;
  private readonly metricName: string;
  private readonly metricHelp: string;

  constructor(opts: FastHistogramOptions) {
    const sorted = [...opts.buckets];
    for (let i = 1; i < sorted.length; i++) {
      if (!(sorted[i]! > sorted[i - 1]!)) throw new Error(`${opts.name}: buckets must be strictly ascending`);
    }
    super({ name: opts.name, help: opts.help, buckets: sorted, registers: [opts.registry] });
    this.metricName = opts.name;
    this.metricHelp = opts.help;
    this.bounds = Float64Array.from(sorted);
    this.counts = new Float64Array(sorted.length + 1);
  }

  /** Records one observation in seconds. Never throws, never allocates. */
  record(seconds: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && seconds > b[i]!) i++;
    this.counts[i]!++;
    this.total += seconds;
    this.observations++;
  }

  get count(): number { return this.observations; }
  get sum(): number { return this.total; }

  /** Called by prom-client's registry (and by get()) at scrape time. */
  async getForPromString(): Promise<HistogramData> {
    const bucketName = `${this.metricName}_bucket`;
    const values: HistogramLine[] = [];
    let cumulative = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      cumulative += this.counts[i]!;
      values.push({ labels: { le: this.bounds[i]! }, sharedLabels: {}, value: cumulative, metricName: bucketName });
    }
    values.push(
      { labels: { le: '+Inf' }, sharedLabels: {}, value: this.observations, metricName: bucketName },
      { labels: {}, sharedLabels: {}, value: this.total, metricName: `${this.metricName}_sum` },
      { labels: {}, sharedLabels: {}, value: this.observations, metricName: `${this.metricName}_count` },
    );
    return { name: this.metricName, help: this.metricHelp, type: 'histogram', values, aggregator: 'sum' };
  }

  override reset(): void {
    super.reset();
    // The base constructor calls reset() before our fields exist.
    if (this.counts === undefined) return;
    this.counts.fill(0);
    this.total = 0;
    this.observations = 0;
  }
}
