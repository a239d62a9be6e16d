import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { createCsr } from './ca.js';

/**
 * The workload side of the cluster certificate flow: make a key, send a certificate request with
 * the pod's projected service-account token, write tls.crt / tls.key / ca.crt for Envoy.
 */

export interface WorkloadCertRequest {
  /** https://…/v1/certificates of the control plane. */
  url: string;
  /** PEM CA that the control plane's certificate must chain to (the mesh CA, distributed as a ConfigMap). */
  ca: string;
  /** File holding the projected service-account token (re-read on every request: the kubelet rotates it). */
  tokenFile: string;
  outDir: string;
}

export interface IssuedFiles { cert: string; key: string; ca: string; spiffeId: string }

function postJson(url: string, ca: string, token: string, body: string): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: 'POST', ca, timeout: 10_000,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        try { resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, unknown> }); } catch { resolve({ status: res.statusCode ?? 0, json: { error: text.slice(0, 300) } }); }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within 10 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Files are written next to their final names and renamed, so Envoy never reads half a pair. */
export async function requestWorkloadCertificate(r: WorkloadCertRequest): Promise<IssuedFiles> {
  const token = readFileSync(r.tokenFile, 'utf8').trim();
  const { csrPem, keyPem } = await createCsr('workload');
  const res = await postJson(r.url, r.ca, token, JSON.stringify({ csr: csrPem }));
  if (res.status !== 200 || typeof res.json.certificate !== 'string' || typeof res.json.ca !== 'string') {
    throw new Error(`the control plane refused the certificate request (HTTP ${res.status}): ${String(res.json.error ?? JSON.stringify(res.json))}`);
  }
  mkdirSync(r.outDir, { recursive: true, mode: 0o700 });
  const files = { cert: join(r.outDir, 'tls.crt'), key: join(r.outDir, 'tls.key'), ca: join(r.outDir, 'ca.crt') };
  const put = (path: string, text: string, mode: number): void => {
    writeFileSync(`${path}.tmp`, text, { mode });
    chmodSync(`${path}.tmp`, mode);
    renameSync(`${path}.tmp`, path);
  };
  put(files.key, keyPem, 0o600);
  put(files.cert, res.json.certificate, 0o644);
  put(files.ca, res.json.ca, 0o644);
  return { ...files, spiffeId: String(res.json.spiffe_id ?? '') };
}
