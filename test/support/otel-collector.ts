import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManagedProcess } from '../../src/util/process.js';
import { freePort } from '../../src/util/net.js';
import { toolPath } from '../../src/util/tools.js';

/** OTLP/JSON attribute value, as the collector's file exporter writes it. */
export interface OtlpAnyValue { stringValue?: string; intValue?: string | number; boolValue?: boolean; doubleValue?: number; kvlistValue?: { values: OtlpKeyValue[] }; arrayValue?: { values: OtlpAnyValue[] } }
export interface OtlpKeyValue { key: string; value: OtlpAnyValue }

export interface CollectedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes?: OtlpKeyValue[];
  links?: Array<{ traceId: string; spanId: string; attributes?: OtlpKeyValue[] }>;
  status?: { code?: number; message?: string };
  /** service.name of the resource that sent it. */
  service: string | undefined;
}

export interface CollectedLog {
  timeUnixNano?: string;
  severityText?: string;
  severityNumber?: number;
  body?: OtlpAnyValue;
  attributes?: OtlpKeyValue[];
  traceId?: string;
  eventName?: string;
  service: string | undefined;
}

interface ExportLine {
  resourceSpans?: Array<{ resource?: { attributes?: OtlpKeyValue[] }; scopeSpans?: Array<{ spans?: Omit<CollectedSpan, 'service'>[] }> }>;
  resourceLogs?: Array<{ resource?: { attributes?: OtlpKeyValue[] }; scopeLogs?: Array<{ logRecords?: Omit<CollectedLog, 'service'>[] }> }>;
}

export function attrOf(attrs: OtlpKeyValue[] | undefined, key: string): string | undefined {
  const v = attrs?.find((a) => a.key === key)?.value;
  if (!v) return undefined;
  return v.stringValue ?? (v.intValue !== undefined ? String(v.intValue) : v.boolValue !== undefined ? String(v.boolValue) : v.doubleValue !== undefined ? String(v.doubleValue) : undefined);
}

const serviceOf = (attrs: OtlpKeyValue[] | undefined): string | undefined => attrOf(attrs, 'service.name');

/**
 * A real OpenTelemetry Collector (`make otelcol`: OTLP receiver, file exporter) on free loopback
 * ports. Everything it receives lands as OTLP/JSON lines in one file that the test reads back.
 */
export class OtelCollector {
  private constructor(
    private readonly proc: ManagedProcess,
    private readonly dir: string,
    private readonly out: string,
    /** OTLP/gRPC host:port. */
    readonly grpc: string,
    /** OTLP/HTTP base URL (append /v1/traces, /v1/logs). */
    readonly http: string,
  ) {}

  static async start(): Promise<OtelCollector> {
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-otelcol-'));
    const out = join(dir, 'received.jsonl');
    const grpcPort = await freePort();
    const httpPort = await freePort();
    const config = join(dir, 'config.yaml');
    writeFileSync(config, [
      'receivers:',
      '  otlp:',
      '    protocols:',
      `      grpc: { endpoint: "127.0.0.1:${grpcPort}" }`,
      `      http: { endpoint: "127.0.0.1:${httpPort}" }`,
      'exporters:',
      `  file: { path: "${out}", flush_interval: 100ms }`,
      'service:',
      '  telemetry: { metrics: { level: none } }',
      '  pipelines:',
      '    traces: { receivers: [otlp], exporters: [file] }',
      '    logs: { receivers: [otlp], exporters: [file] }',
      '',
    ].join('\n'));
    const proc = await ManagedProcess.start('otelcol', toolPath('otelcol'), ['--config', config], {
      readyPattern: /Everything is ready/, timeoutMs: 30_000, echo: process.env.TOLLGATE_TEST_ECHO === '1',
    });
    return new OtelCollector(proc, dir, out, `127.0.0.1:${grpcPort}`, `http://127.0.0.1:${httpPort}`);
  }

  private lines(): ExportLine[] {
    if (!existsSync(this.out)) return [];
    // The exporter may be mid-line: only lines it has finished (ended by a newline) are read.
    const complete = readFileSync(this.out, 'utf8').split('\n').slice(0, -1);
    return complete.filter((l) => l.trim()).map((l) => JSON.parse(l) as ExportLine);
  }

  spans(): CollectedSpan[] {
    return this.lines().flatMap((l) => (l.resourceSpans ?? []).flatMap((rs) => {
      const service = serviceOf(rs.resource?.attributes);
      return (rs.scopeSpans ?? []).flatMap((ss) => (ss.spans ?? []).map((s) => ({ ...s, service })));
    }));
  }

  logs(): CollectedLog[] {
    return this.lines().flatMap((l) => (l.resourceLogs ?? []).flatMap((rl) => {
      const service = serviceOf(rl.resource?.attributes);
      return (rl.scopeLogs ?? []).flatMap((sl) => (sl.logRecords ?? []).map((r) => ({ ...r, service })));
    }));
  }

  /** Polls what the collector wrote until `pick` returns a value (or the deadline passes). */
  async waitFor<T>(what: string, pick: (c: OtelCollector) => T | null | undefined, timeoutMs = 20_000): Promise<T> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = pick(this);
      if (v !== null && v !== undefined) return v;
      if (Date.now() > end) throw new Error(`collector never received ${what}; it has ${this.spans().length} spans and ${this.logs().length} log records`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stop(): Promise<void> {
    await this.proc.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
