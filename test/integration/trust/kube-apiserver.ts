import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { startKubeCluster } from '../../support/kube-cluster.js';

/**
 * A real API server for the trust tests, which only need TokenRequest and TokenReview over plain
 * REST: etcd and kube-apiserver started by the shared harness (test/support/kube-cluster.ts), one
 * per test file, with an admin token and its CA.
 */
export interface ApiServer {
  server: string;
  adminToken: string;
  ca: string;
  call(method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }>;
  stop(): Promise<void>;
}

/** `make kube-tools` builds these into .tools/bin. */
export function haveKubeTools(): boolean {
  const bin = process.env.TOLLGATE_TOOLS ?? join(process.cwd(), '.tools', 'bin');
  return existsSync(join(bin, 'kube-apiserver')) && existsSync(join(bin, 'etcd'));
}

export async function startApiServer(): Promise<ApiServer> {
  const cluster = await startKubeCluster();
  const ca = readFileSync(join(cluster.dir, 'certs', 'apiserver.crt'), 'utf8');
  return {
    server: cluster.server,
    adminToken: cluster.token,
    ca,
    call: (method, path, body) => new Promise((resolve, reject) => {
      const text = body === undefined ? undefined : JSON.stringify(body);
      const req = request(`${cluster.server}${path}`, { method, ca, timeout: 5000, headers: { authorization: `Bearer ${cluster.token}`, 'content-type': 'application/json' } }, (res) => {
        let out = '';
        res.on('data', (c: Buffer) => { out += c.toString(); });
        res.on('end', () => { try { resolve({ status: res.statusCode ?? 0, json: JSON.parse(out) as Record<string, unknown> }); } catch { resolve({ status: res.statusCode ?? 0, json: { raw: out } }); } });
      });
      req.on('error', reject);
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.end(text);
    }),
    stop: () => cluster.stop(),
  };
}
