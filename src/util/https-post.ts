import { request } from 'node:https';
import { checkCaPem } from './pem-ca.js';

export interface BearerPost {
  url: string;
  /**
   * PEM CA the server's certificate must chain to (only this one is trusted). It must hold a
   * certificate: Node's TLS would read '' as "no CA" and trust the system's roots instead.
   */
  ca: string;
  token: string;
  /** A JSON document, already serialised. */
  body: string;
  timeoutMs: number;
}

/**
 * POSTs a JSON body over HTTPS with a bearer token and resolves with the status and the answer's
 * text, whatever the status: each caller judges its own API's answers. Rejects on a transport
 * error, or when no answer came within timeoutMs (the request is then torn down, not left hanging).
 * Rejects before connecting when the CA holds no certificate or the token is empty: the token is
 * never sent to a server checked against anything but the CA given, and never as a bare `Bearer `.
 */
export function postWithBearer(p: BearerPost): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    try {
      checkCaPem(p.ca, `the CA for ${p.url}`);
    } catch (e) {
      reject(e as Error);
      return;
    }
    if (p.token.trim() === '') {
      reject(new Error(`no bearer token to send to ${p.url} (it is empty)`));
      return;
    }
    const req = request(p.url, {
      method: 'POST', ca: p.ca, timeout: p.timeoutMs,
      headers: { authorization: `Bearer ${p.token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(p.body) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${p.url} within ${p.timeoutMs / 1000} s`)));
    req.on('error', reject);
    req.end(p.body);
  });
}
