import { DiagLogLevel, context, diag, propagation, trace } from '@opentelemetry/api';
import { CheckTracer } from './check-span.js';

export interface TracingOptions {
  /** service.name, unless OTEL_SERVICE_NAME sets one. */
  serviceName: string;
  /** Instrumentation scope version on every span (the Tollgate version). */
  version?: string;
  /** Where exporter trouble (collector unreachable, rejected spans) is reported. */
  logger?: { warn(obj: Record<string, unknown>, msg: string): void };
}

export interface Tracing {
  readonly enabled: boolean;
  /** Why tracing is on or off, for the start-up log line. */
  readonly reason: string;
  readonly checks: CheckTracer;
  /** Flushes spans not yet exported, then unregisters the SDK. */
  shutdown(): Promise<void>;
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Tracing is opt-in: the standard OTel variables that point at a collector turn it on. Without
 * them the SDK is never loaded, so a plain local authz pays nothing for it.
 */
export function tracingRequested(env: Env = process.env): { on: boolean; reason: string } {
  if ((env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true') return { on: false, reason: 'OTEL_SDK_DISABLED=true' };
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (exporters.length > 0) {
    return exporters[0] === 'none'
      ? { on: false, reason: 'OTEL_TRACES_EXPORTER=none' }
      : { on: true, reason: `OTEL_TRACES_EXPORTER=${exporters.join(',')}` };
  }
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (endpoint) return { on: true, reason: `OTLP endpoint ${endpoint}` };
  return { on: false, reason: 'no OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_TRACES_EXPORTER set' };
}

function routeDiagnostics(logger: NonNullable<TracingOptions['logger']>): void {
  const warn = (message: string, ...args: unknown[]): void => logger.warn({ otel: args.map(String) }, `opentelemetry: ${message}`);
  const quiet = (): void => undefined;
  diag.setLogger({ error: warn, warn, info: quiet, debug: quiet, verbose: quiet }, DiagLogLevel.WARN);
}

/**
 * Starts the OpenTelemetry Node SDK for traces only when asked to (see tracingRequested); the
 * exporter, protocol, sampler and propagators come from the standard OTEL_* variables. Metrics
 * stay on Prometheus (/metrics) and logs on stderr, so the SDK's metric and log pipelines are off.
 */
export async function startTracing(opts: TracingOptions): Promise<Tracing> {
  const wanted = tracingRequested();
  if (!wanted.on) {
    return { enabled: false, reason: wanted.reason, checks: CheckTracer.disabled, shutdown: async () => undefined };
  }
  // OTEL_LOG_LEVEL, when set, already sends SDK diagnostics to the console; do not override it.
  if (opts.logger && !process.env.OTEL_LOG_LEVEL) routeDiagnostics(opts.logger);
  // Loaded only now: the SDK and its exporters are a noticeable share of start-up time.
  const { NodeSDK } = await import('@opentelemetry/sdk-node');
  const sdk = new NodeSDK({
    ...(process.env.OTEL_SERVICE_NAME ? {} : { serviceName: opts.serviceName }),
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [],
  });
  sdk.start();
  const checks = new CheckTracer(trace.getTracer('tollgate', opts.version));
  let stopped = false;
  return {
    enabled: true,
    reason: wanted.reason,
    checks,
    async shutdown() {
      if (stopped) return;
      stopped = true;
      try {
        await sdk.shutdown();
      } finally {
        // Unregister the globals so a later startTracing in this process (tests, restarts) takes effect.
        trace.disable();
        propagation.disable();
        context.disable();
        diag.disable();
      }
    },
  };
}
