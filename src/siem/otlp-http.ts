import type { OtlpLogsRequest } from './otlp-logs.js';

/** Where OTLP/HTTP logs go: `<endpoint>/v1/logs` unless the URL already names that path. */
export function logsUrl(endpoint: string): string {
  let u: URL;
  try { u = new URL(endpoint); } catch { throw new Error(`OTLP endpoint "${endpoint}" is not a URL (e.g. http://otel-collector:4318)`); }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`OTLP endpoint must be http:// or https://, got ${u.protocol}`);
  return u.pathname.endsWith('/v1/logs') ? u.toString() : new URL('v1/logs', u.toString().endsWith('/') ? u : `${u.toString()}/`).toString();
}

/**
 * POSTs one ExportLogsServiceRequest as JSON. A non-2xx answer, or a partial success that
 * rejected records, is an error naming what the collector said; nothing is retried silently.
 */
export async function postOtlpLogs(url: string, body: OtlpLogsRequest, headers: Readonly<Record<string, string>> = {}, timeoutMs = 10_000): Promise<void> {
  const res = await fetch(url, {
    method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs),
    headers: { 'content-type': 'application/json', ...headers },
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`OTLP endpoint ${url} answered ${res.status}: ${text.slice(0, 300)}`);
  let parsed: { partialSuccess?: { rejectedLogRecords?: string | number; errorMessage?: string } } = {};
  try { parsed = text ? JSON.parse(text) as typeof parsed : {}; } catch { /* a 2xx without a JSON body is a success */ }
  const rejected = Number(parsed.partialSuccess?.rejectedLogRecords ?? 0);
  if (rejected > 0) throw new Error(`OTLP endpoint ${url} rejected ${rejected} log records: ${parsed.partialSuccess?.errorMessage ?? 'no reason given'}`);
}
