/**
 * Workload identities as SPIFFE IDs, the form Istio uses in certificate URI SANs:
 * `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`. Pure functions, no I/O.
 */

export const DEFAULT_TRUST_DOMAIN = 'tollgate.local';

export interface WorkloadIdentity {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

// DNS-label-like segments only: a SAN is compared as text, so no character may be ambiguous.
const SEGMENT = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;

function checkSegment(what: string, value: string): void {
  if (!SEGMENT.test(value)) throw new Error(`${what} ${JSON.stringify(value)} is not a valid name (lowercase letters, digits, '-' and '.')`);
}

export function spiffeId(id: WorkloadIdentity): string {
  checkSegment('trust domain', id.trustDomain);
  checkSegment('namespace', id.namespace);
  checkSegment('service account', id.serviceAccount);
  return `spiffe://${id.trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
}

/** Parses a SPIFFE ID of the namespace/service-account form; null for anything else. */
export function parseSpiffeId(uri: string): WorkloadIdentity | null {
  if (uri.length > 600 || !uri.startsWith('spiffe://')) return null;
  const parts = uri.slice('spiffe://'.length).split('/');
  if (parts.length !== 5 || parts[1] !== 'ns' || parts[3] !== 'sa') return null;
  const [trustDomain, , namespace, , serviceAccount] = parts as [string, string, string, string, string];
  for (const s of [trustDomain, namespace, serviceAccount]) if (!SEGMENT.test(s)) return null;
  return { trustDomain, namespace, serviceAccount };
}
