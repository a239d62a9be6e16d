import { ROOT_CONTEXT, SpanKind, SpanStatusCode, propagation, type Span, type Tracer } from '@opentelemetry/api';
import type { ReasonClass } from '../contract/refusal.js';

export const CHECK_SPAN_NAME = 'tollgate.authz.check';

/** What a Check span says about the decision, set when the decision is known. */
export interface CheckSpanFacts {
  decisionId: string;
  allow: boolean;
  /** Ignored for allows. */
  reasonClass: ReasonClass;
  server: string;
  method: string | null;
  tool: string | null;
}

/** Wall-clock milliseconds with sub-millisecond precision, the time base OTel spans use. */
function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Sets the decision attributes and ends the span. */
export function finishCheckSpan(span: Span, facts: CheckSpanFacts, endTime?: number): void {
  span.setAttribute('mcp.server', facts.server);
  if (facts.method !== null) span.setAttribute('mcp.method', facts.method);
  if (facts.tool !== null) span.setAttribute('mcp.tool', facts.tool);
  span.setAttribute('tollgate.decision', facts.allow ? 'allow' : 'deny');
  span.setAttribute('tollgate.decision_id', facts.decisionId);
  if (!facts.allow) {
    span.setAttribute('tollgate.reason_class', facts.reasonClass);
    // A policy or budget denial is the service working; only a refusal for want of service is an error.
    if (facts.reasonClass === 'unavailable') span.setStatus({ code: SpanStatusCode.ERROR, message: 'authz could not decide; the call was refused (fail closed)' });
  }
  span.end(endTime);
}

/**
 * Check spans, continuing the caller's trace from the W3C `traceparent` (and `tracestate`) header
 * Envoy forwards in the CheckRequest. When tracing is off, `enabled` is false and every method
 * returns at once: the Check path tests the boolean before building anything.
 */
export class CheckTracer {
  static readonly disabled = new CheckTracer(null);

  readonly enabled: boolean;

  constructor(private readonly tracer: Tracer | null) {
    this.enabled = tracer !== null;
  }

  /** Opens the span of one Check; null when tracing is off. `startTime`: epoch ms, default now. */
  start(headers: Readonly<Record<string, string>>, startTime?: number): Span | null {
    if (this.tracer === null) return null;
    // The global propagator (W3C trace context unless OTEL_PROPAGATORS says otherwise) reads the headers.
    const parent = propagation.extract(ROOT_CONTEXT, headers);
    return this.tracer.startSpan(CHECK_SPAN_NAME, {
      kind: SpanKind.SERVER,
      startTime: startTime ?? nowMs(),
      attributes: { 'rpc.system': 'grpc', 'rpc.service': 'envoy.service.auth.v3.Authorization', 'rpc.method': 'Check' },
    }, parent);
  }

  /**
   * Records a finished decision as a span that ends now and began `durationNs` ago, so the Check
   * path needs a single call once the decision is made, with no span to carry through it.
   */
  record(headers: Readonly<Record<string, string>>, facts: CheckSpanFacts, durationNs: number): void {
    if (this.tracer === null) return;
    const end = nowMs();
    const span = this.start(headers, end - durationNs / 1e6);
    if (span) finishCheckSpan(span, facts, end);
  }
}
