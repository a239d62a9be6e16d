import { request } from 'node:https';

export interface BearerPost {
  url: string;
  /** PEM CA the server's certificate must chain to (only this one is trusted). */
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
 */
export function postWithBearer(p: BearerPost): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
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
