import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../../../src/util/tools.js';
import { freePort } from '../../../src/util/net.js';

/**
 * Just enough of a real API server to issue and review service-account tokens: etcd and
 * kube-apiserver (from .tools/bin) on loopback, an admin token, and service-account signing keys.
 * (The k8s tests grow a fuller harness; this one only needs TokenRequest and TokenReview.)
 */
export interface ApiServer {
  server: string;
  adminToken: string;
  ca: string;
  call(method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }>;
  stop(): Promise<void>;
}

/** `make kube-tools` (from the k8s work) builds these into .tools/bin. */
function toolPath(name: 'kube-apiserver' | 'etcd'): string {
  return join(process.env.TOLLGATE_TOOLS ?? join(projectRoot(), '.tools', 'bin'), name);
}

export function haveKubeTools(): boolean {
  return existsSync(toolPath('kube-apiserver')) && existsSync(toolPath('etcd'));
}

async function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const done = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), 5000);
  await done;
  clearTimeout(t);
}

export async function startApiServer(): Promise<ApiServer> {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-kapi-'));
  const [etcdPort, peerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  const log = openSync(join(dir, 'log'), 'a');
  const etcd = spawn(toolPath('etcd'), ['--name', 't', '--data-dir', join(dir, 'etcd'), '--unsafe-no-fsync', '--log-level', 'warn',
    '--listen-client-urls', `http://127.0.0.1:${etcdPort}`, '--advertise-client-urls', `http://127.0.0.1:${etcdPort}`,
    '--listen-peer-urls', `http://127.0.0.1:${peerPort}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
    '--initial-cluster', `t=http://127.0.0.1:${peerPort}`], { stdio: ['ignore', log, log] });
  const adminToken = randomBytes(24).toString('hex');
  writeFileSync(join(dir, 'tokens.csv'), `${adminToken},admin,1,"system:masters"\n`);
  const sa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(join(dir, 'sa.key'), sa.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(join(dir, 'sa.pub'), sa.publicKey.export({ type: 'spki', format: 'pem' }));
  const api = spawn(toolPath('kube-apiserver'), [`--etcd-servers=http://127.0.0.1:${etcdPort}`, '--bind-address=127.0.0.1', `--secure-port=${apiPort}`,
    `--cert-dir=${join(dir, 'certs')}`, `--token-auth-file=${join(dir, 'tokens.csv')}`, '--authorization-mode=RBAC',
    `--service-account-key-file=${join(dir, 'sa.pub')}`, `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
    '--service-account-issuer=https://kubernetes.default.svc', '--service-cluster-ip-range=10.96.0.0/16',
    '--disable-admission-plugins=ServiceAccount', '--enable-priority-and-fairness=false'], { stdio: ['ignore', log, log] });
  const server = `https://127.0.0.1:${apiPort}`;
  const caFile = join(dir, 'certs', 'apiserver.crt');
  const self: ApiServer = {
    server, adminToken, ca: '',
    call: (method, path, body) => new Promise((resolve, reject) => {
      const text = body === undefined ? undefined : JSON.stringify(body);
      const req = request(`${server}${path}`, { method, ca: self.ca, timeout: 5000, headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' } }, (res) => {
        let out = '';
        res.on('data', (c: Buffer) => { out += c.toString(); });
        res.on('end', () => { try { resolve({ status: res.statusCode ?? 0, json: JSON.parse(out) as Record<string, unknown> }); } catch { resolve({ status: res.statusCode ?? 0, json: { raw: out } }); } });
      });
      req.on('error', reject);
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.end(text);
    }),
    stop: async () => { await stop(api); await stop(etcd); rmSync(dir, { recursive: true, force: true }); },
  };
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (api.exitCode !== null) { await self.stop(); throw new Error(`kube-apiserver exited: ${readFileSync(join(dir, 'log'), 'utf8').slice(-1500)}`); }
    if (existsSync(caFile)) {
      self.ca = readFileSync(caFile, 'utf8');
      const ok = await self.call('GET', '/readyz').then((r) => r.status === 200, () => false);
      if (ok) return self;
    }
    if (Date.now() > deadline) { await self.stop(); throw new Error('kube-apiserver not ready after 90 s'); }
    await new Promise((r) => setTimeout(r, 250));
  }
}
