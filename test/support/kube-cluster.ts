import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ApiextensionsV1Api, KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { serverSideApply, type ObjectRef } from '../../src/operator/kube-rest.js';
import { parseAllDocuments } from 'yaml';
import { freePort } from '../../src/util/net.js';
import { afterRun } from './root-hooks.js';

/**
 * A real control plane for tests: etcd and kube-apiserver (built by `make kube-tools`) on free
 * loopback ports, with a bearer token in system:masters and a kubeconfig. There is no scheduler
 * and no kubelet, so pods stay Pending; that is enough for admission webhooks, CRD validation and
 * controllers, which is what these tests exercise.
 */

export interface KubeCluster {
  /** https://127.0.0.1:PORT */
  readonly server: string;
  readonly token: string;
  readonly kubeconfigPath: string;
  readonly kc: KubeConfig;
  readonly dir: string;
  /** A kubeconfig for a plain user (no groups): only what RBAC bindings grant it. */
  userConfig(user: string): KubeConfig;
  stop(): Promise<void>;
}

/** Users with their own bearer token (no groups), for tests that run a component under its real RBAC. */
export const TEST_USERS = ['tollgate-operator-test'];

function toolsDir(): string {
  return process.env.TOLLGATE_TOOLS ?? resolve(process.cwd(), '.tools', 'bin');
}

export function kubeTool(name: 'etcd' | 'kube-apiserver' | 'helm' | 'kubectl' | 'kustomize'): string {
  const p = join(toolsDir(), name);
  if (!existsSync(p)) throw new Error(`${p} is missing: run \`make kube-tools\` (builds kube-apiserver, etcd, kubectl and helm into .tools/)`);
  return p;
}

function spawnLogged(bin: string, args: string[], log: string): ChildProcess {
  const fd = openSync(log, 'a');
  const child = spawn(bin, args, { stdio: ['ignore', fd, fd] });
  closeSync(fd); // the child holds its own copy
  return child;
}

async function stopProcess(p: ChildProcess, graceMs = 5000): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
}

/** Thrown when etcd or kube-apiserver exits before the API server is ready: worth another try on fresh ports. */
class ExitedEarly extends Error {}

async function waitReady(server: string, token: string, ca: () => string | null, child: ChildProcess, log: string, timeoutMs: number): Promise<void> {
  const { request } = await import('node:https');
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new ExitedEarly(`kube-apiserver exited with ${child.exitCode ?? child.signalCode}:\n${tail(log)}`);
    const caPem = ca();
    if (caPem) {
      const ok = await new Promise<boolean>((res) => {
        const req = request(`${server}/readyz`, { ca: caPem, headers: { authorization: `Bearer ${token}` }, timeout: 2000 }, (r) => {
          let body = '';
          r.on('data', (c: Buffer) => { body += c.toString(); });
          r.on('end', () => { last = `${r.statusCode} ${body.slice(0, 200)}`; res(r.statusCode === 200); });
        });
        req.on('error', (e) => { last = e.message; res(false); });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.end();
      });
      if (ok) return;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`kube-apiserver not ready after ${timeoutMs} ms (${last}); see ${log}`);
}

export interface KubeClusterOptions {
  /** Extra kube-apiserver flags. */
  apiserverArgs?: string[];
  readyTimeoutMs?: number;
}

/**
 * Starts etcd and kube-apiserver; a start where either exits early (a port taken between the pick
 * and the bind, an etcd that was not up when the API server gave up on it) is retried on fresh
 * ports, up to three times, and the last failure carries both logs.
 */
export async function startKubeCluster(opts: KubeClusterOptions = {}): Promise<KubeCluster> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startKubeClusterOnce(opts);
    } catch (e) {
      if (!(e instanceof ExitedEarly) || attempt >= 3) throw e;
    }
  }
}

/** The last lines of a log file, or why there are none. */
function tail(file: string, chars = 2000): string {
  try { return readFileSync(file, 'utf8').slice(-chars); } catch (e) { return `(no log: ${(e as Error).message})`; }
}

/** Waits until etcd answers its health endpoint, so the API server does not start against nothing. */
async function waitEtcd(port: number, child: ChildProcess, log: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new ExitedEarly(`etcd exited with ${child.exitCode ?? child.signalCode}:\n${tail(log)}`);
    const ok = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2000) }).then((r) => r.ok, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`etcd not healthy after ${timeoutMs} ms:\n${tail(log)}`);
}

async function startKubeClusterOnce(opts: KubeClusterOptions): Promise<KubeCluster> {
  const etcdBin = kubeTool('etcd');
  const apiBin = kubeTool('kube-apiserver');
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-kube-'));
  const [etcdClient, etcdPeer, apiPort] = [await freePort(), await freePort(), await freePort()];
  const etcdLog = join(dir, 'etcd.log');
  const etcd = spawnLogged(etcdBin, [
    '--name', 'test', '--data-dir', join(dir, 'etcd'),
    '--listen-client-urls', `http://127.0.0.1:${etcdClient}`, '--advertise-client-urls', `http://127.0.0.1:${etcdClient}`,
    '--listen-peer-urls', `http://127.0.0.1:${etcdPeer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${etcdPeer}`,
    '--initial-cluster', `test=http://127.0.0.1:${etcdPeer}`, '--log-level', 'warn',
    // A throwaway store: skip fsync so tests do not wait on the disk.
    '--unsafe-no-fsync',
  ], etcdLog);

  try {
    await waitEtcd(etcdClient, etcd, etcdLog, opts.readyTimeoutMs ?? 90_000);
  } catch (e) {
    await stopProcess(etcd);
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }

  const token = randomBytes(24).toString('hex');
  const userTokens = new Map(TEST_USERS.map((u) => [u, randomBytes(24).toString('hex')]));
  writeFileSync(join(dir, 'tokens.csv'), [`${token},tollgate-test-admin,1,"system:masters"`, ...[...userTokens].map(([u, t], i) => `${t},${u},${100 + i}`)].join('\n') + '\n', { mode: 0o600 });
  const sa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(join(dir, 'sa.key'), sa.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(join(dir, 'sa.pub'), sa.publicKey.export({ type: 'spki', format: 'pem' }));
  const certDir = join(dir, 'certs');
  const apiLog = join(dir, 'kube-apiserver.log');
  const api = spawnLogged(apiBin, [
    `--etcd-servers=http://127.0.0.1:${etcdClient}`,
    '--bind-address=127.0.0.1', `--secure-port=${apiPort}`, `--cert-dir=${certDir}`,
    `--token-auth-file=${join(dir, 'tokens.csv')}`,
    '--authorization-mode=RBAC',
    `--service-account-key-file=${join(dir, 'sa.pub')}`,
    `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
    '--service-account-issuer=https://kubernetes.default.svc',
    '--service-cluster-ip-range=10.96.0.0/16',
    // No controller-manager creates the default ServiceAccount of a namespace, which this
    // admission plugin would require of every pod.
    '--disable-admission-plugins=ServiceAccount',
    '--enable-priority-and-fairness=false',
    '--v=0',
    ...(opts.apiserverArgs ?? []),
  ], apiLog);
  const server = `https://127.0.0.1:${apiPort}`;
  const caFile = join(certDir, 'apiserver.crt');
  const stop = async (): Promise<void> => {
    await stopProcess(api);
    await stopProcess(etcd);
    if (!process.env.TOLLGATE_KEEP_KUBE) rmSync(dir, { recursive: true, force: true });
  };
  const onExit = (): void => {
    api.kill('SIGKILL');
    etcd.kill('SIGKILL');
    if (!process.env.TOLLGATE_KEEP_KUBE) rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', onExit);
  try {
    await waitReady(server, token, () => (existsSync(caFile) ? readFileSync(caFile, 'utf8') : null), api, apiLog, opts.readyTimeoutMs ?? 90_000);
  } catch (e) {
    await stop();
    throw e;
  }
  const kubeconfigPath = join(dir, 'kubeconfig');
  const caData = readFileSync(caFile).toString('base64');
  writeFileSync(kubeconfigPath, [
    'apiVersion: v1', 'kind: Config', 'current-context: tollgate-test',
    'clusters:', `- name: tollgate-test`, '  cluster:', `    server: ${server}`, `    certificate-authority-data: ${caData}`,
    'users:', '- name: admin', '  user:', `    token: ${token}`,
    'contexts:', '- name: tollgate-test', '  context: {cluster: tollgate-test, user: admin}', '',
  ].join('\n'), { mode: 0o600 });
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  return {
    server, token, kubeconfigPath, kc, dir,
    userConfig(user: string): KubeConfig {
      const t = userTokens.get(user);
      if (!t) throw new Error(`no test user ${user} (known: ${TEST_USERS.join(', ')})`);
      const u = new KubeConfig();
      u.loadFromOptions({
        clusters: [{ name: 'tollgate-test', server, caData }],
        users: [{ name: user, token: t }],
        contexts: [{ name: user, cluster: 'tollgate-test', user }],
        currentContext: user,
      });
      return u;
    },
    async stop() {
      process.off('exit', onExit);
      await stop();
    },
  };
}

/** A serving certificate for a webhook the API server reaches by URL on 127.0.0.1; returns PEMs. */
export function loopbackServingCert(dir: string): { caPem: string; certFile: string; keyFile: string } {
  const ossl = (args: string[]): void => { execFileSync('openssl', args, { stdio: 'pipe' }); };
  const f = (n: string): string => join(dir, n);
  ossl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=tollgate-test-ca',
    '-keyout', f('ca.key'), '-out', f('ca.crt')]);
  ossl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', f('tls.key'), '-out', f('tls.csr')]);
  writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  ossl(['x509', '-req', '-in', f('tls.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f('ext.cnf'), '-out', f('tls.crt')]);
  return { caPem: readFileSync(f('ca.crt'), 'utf8'), certFile: f('tls.crt'), keyFile: f('tls.key') };
}

let shared: Promise<KubeCluster> | null = null;

/**
 * One API server for every test file that needs one (starting it costs ~15 s on a loaded
 * machine). It is stopped after the last test file; each file uses its own namespaces.
 */
export function sharedKubeCluster(): Promise<KubeCluster> {
  if (!shared) {
    const started = startKubeCluster();
    shared = started;
    // Stopped (and awaited) after the last test file: etcd and kube-apiserver are child processes
    // whose handles would otherwise keep the test process alive.
    afterRun('the shared kube-apiserver and etcd', async () => {
      const c = await started.catch(() => null);
      if (shared === started) shared = null;
      await c?.stop();
    });
    started.catch(() => { if (shared === started) shared = null; });
  }
  return shared;
}

/** Every YAML document of the files, as objects (the CRDs, a kustomize base's resources). */
export function yamlObjects(files: string[]): KubernetesObject[] {
  return files.flatMap((f) => parseAllDocuments(readFileSync(f, 'utf8')).map((d) => d.toJS() as KubernetesObject).filter((o) => o && o.kind));
}

/** Applies objects with server-side apply (like `kubectl apply --server-side`). */
export async function applyAll(kc: KubeConfig, objs: KubernetesObject[]): Promise<void> {
  // Not client-node's KubernetesObjectApi: its serializer drops `enum`, `default` and
  // `x-kubernetes-validations` from CRDs (see src/operator/kube-rest.ts).
  for (const o of objs) await serverSideApply(kc, o as ObjectRef, 'tollgate-tests');
}

/** Polls until `f` returns a value (not undefined) or the time is up; the last error explains a timeout. */
export async function eventually<T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 20_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = 'never became true';
  while (Date.now() < deadline) {
    try {
      const v = await f();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`${what}: not within ${timeoutMs} ms (${last instanceof Error ? last.message : String(last)})`);
}

/** Installs the CRDs from manifests/crds and waits until the API server serves them. */
export async function installCrds(kc: KubeConfig): Promise<void> {
  const dir = resolve(process.cwd(), 'manifests', 'crds');
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').map((f) => join(dir, f));
  const crds = yamlObjects(files);
  await applyAll(kc, crds);
  const api = kc.makeApiClient(ApiextensionsV1Api);
  for (const c of crds) {
    await eventually(`CRD ${c.metadata!.name} established`, async () => {
      const got = await api.readCustomResourceDefinition({ name: c.metadata!.name! });
      return got.status?.conditions?.some((x) => x.type === 'Established' && x.status === 'True') ? true : undefined;
    });
  }
}

/** Deletes every Tollgate custom object of a namespace and waits until they are gone (their finalizers released). */
export async function removeTollgateObjects(kc: KubeConfig, namespace: string, timeoutMs = 30_000): Promise<void> {
  const { CustomObjectsApi } = await import('@kubernetes/client-node');
  const custom = kc.makeApiClient(CustomObjectsApi);
  const plurals = ['virtualmcpservers', 'mcppolicies', 'tokenbudgets', 'mcpservers'];
  const left = async (): Promise<number> => {
    let n = 0;
    for (const plural of plurals) n += ((await custom.listNamespacedCustomObject({ group: 'tollgate.dev', version: 'v1alpha1', namespace, plural })) as { items: unknown[] }).items.length;
    return n;
  };
  for (const plural of plurals) {
    const list = (await custom.listNamespacedCustomObject({ group: 'tollgate.dev', version: 'v1alpha1', namespace, plural })) as { items: { metadata: { name: string } }[] };
    for (const o of list.items) await custom.deleteNamespacedCustomObject({ group: 'tollgate.dev', version: 'v1alpha1', namespace, plural, name: o.metadata.name }).catch(() => undefined);
  }
  await eventually(`the Tollgate objects of ${namespace} to go`, async () => ((await left()) === 0 ? true : undefined), timeoutMs);
}
