import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCsr } from './ca.js';
import { postWithBearer } from '../util/https-post.js';
import { checkCaPem } from '../util/pem-ca.js';

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

/**
 * The control plane's certificate endpoint as a URL, or why it is not one: it must be https://,
 * since the pod's token goes with the request. Pure, for the CLI to refuse a bad --url up front.
 */
export function certificatesUrlProblem(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'is not a URL';
  }
  return u.protocol === 'https:' ? null : `uses ${u.protocol.replace(/:$/, '')}://, but the token is only sent over https://`;
}

/** The projected token in `file`, trimmed; an empty file is an error, never an empty `Bearer `. */
export function readTokenFile(file: string): string {
  const token = readFileSync(file, 'utf8').trim();
  if (token === '') throw new Error(`token file ${file} is empty`);
  return token;
}

/** The control plane's answer: its JSON, or the start of a text that is not JSON as `error`. */
async function postJson(url: string, ca: string, token: string, body: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const { status, text } = await postWithBearer({ url, ca, token, body, timeoutMs: 10_000 });
  try {
    return { status, json: JSON.parse(text) as Record<string, unknown> };
  } catch {
    return { status, json: { error: text.slice(0, 300) } };
  }
}

/** Files are written next to their final names and renamed, so Envoy never reads half a pair. */
export async function requestWorkloadCertificate(r: WorkloadCertRequest): Promise<IssuedFiles> {
  const badUrl = certificatesUrlProblem(r.url);
  if (badUrl) throw new Error(`certificate request URL "${r.url}" ${badUrl}`);
  checkCaPem(r.ca, 'the mesh CA given');
  const token = readTokenFile(r.tokenFile);
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
