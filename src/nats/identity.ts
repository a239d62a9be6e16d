import { readFileSync } from 'node:fs';
import { parseSpiffeId } from '../pki/identity.js';
import { uriSans } from '../pki/san.js';

/**
 * A NATS client's identity is the SPIFFE ID in its certificate's URI SAN: the server maps it to a
 * user (verify_and_map) and the permissions generated for that user use the token below for the
 * subjects only that user may touch (its reply inbox, its decision-log subjects).
 */

/**
 * A subject token for a SPIFFE ID: `<namespace>~<service-account>`, dots turned into `_`. SPIFFE
 * segments never hold `_` or `~` (see pki/identity.ts), so two identities never share a token.
 */
export function identityToken(spiffeId: string): string {
  const id = parseSpiffeId(spiffeId);
  if (!id) throw new Error(`"${spiffeId}" is not a spiffe://<trust-domain>/ns/<namespace>/sa/<service-account> ID`);
  return `${id.namespace.replace(/\./g, '_')}~${id.serviceAccount.replace(/\./g, '_')}`;
}

/** Reply subjects of one identity; no other user may subscribe to them. */
export function inboxPrefixFor(spiffeId: string): string {
  return `_INBOX_${identityToken(spiffeId)}`;
}

/** The SPIFFE ID in a client certificate file; a clear error when it has none. */
export function certificateIdentity(certFile: string): string {
  let sans: string[];
  try {
    sans = uriSans(readFileSync(certFile));
  } catch (e) {
    throw new Error(`cannot read NATS client certificate ${certFile}: ${(e as Error).message}`);
  }
  const id = sans.find((u) => parseSpiffeId(u) !== null);
  if (!id) throw new Error(`NATS client certificate ${certFile} has no spiffe://…/ns/…/sa/… URI SAN; the NATS server maps that ID to the client's permissions`);
  return id;
}
