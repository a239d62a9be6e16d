import { X509Certificate } from 'node:crypto';

/**
 * Reading the SANs of a peer's certificate, apart from the CA (ca.ts): servers check every
 * client's SPIFFE ID at handshake, and this needs only Node's own parser, not the ~200 modules
 * of the library that builds certificates.
 */

/** URI SANs of a PEM or DER certificate (Node's parser; used on peer certificates at handshake). */
export function uriSans(cert: string | Buffer): string[] {
  const alt = new X509Certificate(cert).subjectAltName ?? '';
  return parseSubjectAltName(alt).filter((n) => n.type === 'URI').map((n) => n.value);
}

/**
 * Node prints SANs as `DNS:a, URI:b, IP Address:c`, quoting (JSON-style) any value that contains
 * a separator. Linear scan: certificates come from peers.
 */
export function parseSubjectAltName(text: string): { type: string; value: string }[] {
  const out: { type: string; value: string }[] = [];
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon < 0) break;
    const type = text.slice(i, colon).trim();
    let j = colon + 1;
    let value: string;
    if (text[j] === '"') {
      let k = j + 1;
      while (k < text.length && text[k] !== '"') k += text[k] === '\\' ? 2 : 1;
      try { value = JSON.parse(text.slice(j, k + 1)) as string; } catch { value = text.slice(j + 1, k); }
      j = k + 1;
    } else {
      const comma = text.indexOf(',', j);
      value = text.slice(j, comma < 0 ? text.length : comma);
      j = comma < 0 ? text.length : comma;
    }
    out.push({ type, value });
    const next = text.indexOf(',', j);
    i = next < 0 ? text.length : next + 1;
  }
  return out;
}
