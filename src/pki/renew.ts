import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { requestWorkloadCertificate, type IssuedFiles, type WorkloadCertRequest } from './request.js';

/**
 * Keeps a pod's workload certificate fresh (`tollgate cert request --renew`): a new key and
 * certificate at half of what is left of the current one's life, so a control plane that is down
 * for a while still leaves time to retry before the certificate expires.
 */

const MIN_DELAY_MS = 1000;
const MAX_RETRY_MS = 30_000;

/** Pure: when to renew a certificate that expires at `notAfterMs`, seen at `nowMs`: half the time left (0 when expired). */
export function renewDelayMs(notAfterMs: number, nowMs: number): number {
  const left = notAfterMs - nowMs;
  return left <= 0 ? 0 : Math.max(MIN_DELAY_MS, Math.floor(left / 2));
}

/** Pure: how long to wait after a refused or failed renewal, given the time the certificate has left. */
export function retryDelayMs(notAfterMs: number, nowMs: number): number {
  return Math.min(MAX_RETRY_MS, Math.max(MIN_DELAY_MS, Math.floor((notAfterMs - nowMs) / 10)));
}

/** Expiry of the certificate in `dir`/tls.crt, or null when there is none or it is unreadable. */
export function currentExpiry(dir: string): number | null {
  try {
    const t = Date.parse(new X509Certificate(readFileSync(join(dir, 'tls.crt'))).validTo);
    return Number.isFinite(t) ? t : null;
  } catch {
    return null;
  }
}

export interface RenewOptions {
  /** Called after each certificate is written (e.g. to touch Envoy's SDS file). */
  onIssued?: (files: IssuedFiles) => Promise<void>;
  log?: (msg: string) => void;
  signal?: AbortSignal;
  now?: () => number;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) { resolve(); return; }
    const t = setTimeout(() => { signal?.removeEventListener('abort', done); resolve(); }, ms);
    const done = (): void => { clearTimeout(t); resolve(); };
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Renews until `signal` aborts. A certificate already in the directory (the init container's) is
 * used until its half-life; without one, the first request is made at once. Failures are logged
 * and retried, never fatal: the current certificate stays in place until a new one is written.
 */
export async function keepRenewing(req: WorkloadCertRequest, o: RenewOptions = {}): Promise<void> {
  const now = o.now ?? Date.now;
  const log = o.log ?? (() => undefined);
  let expiry = currentExpiry(req.outDir);
  let retrying = false;
  while (!o.signal?.aborted) {
    if (!retrying) {
      const wait = expiry === null ? 0 : renewDelayMs(expiry, now());
      if (wait > 0) log(`certificate valid until ${new Date(expiry!).toISOString()}; renewing in ${Math.round(wait / 1000)} s`);
      await sleep(wait, o.signal);
      if (o.signal?.aborted) break;
    }
    try {
      const files = await requestWorkloadCertificate(req);
      await o.onIssued?.(files);
      expiry = currentExpiry(req.outDir);
      retrying = false;
      log(`renewed ${files.spiffeId}${expiry ? `, valid until ${new Date(expiry).toISOString()}` : ''}`);
    } catch (e) {
      // Until a new certificate is written the current one stays; retry sooner as it runs out.
      const retry = expiry === null || expiry <= now() ? 5 * MIN_DELAY_MS : retryDelayMs(expiry, now());
      log(`renewal failed (${(e as Error).message}); retrying in ${Math.round(retry / 1000)} s`);
      retrying = true;
      await sleep(retry, o.signal);
    }
  }
}
