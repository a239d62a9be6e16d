import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { generateSigningKeyPair } from '../bundle/keys.js';
import { mintDevToken } from '../identity/issuer.js';
import { formatRegistrations } from '../controlplane/registrations.js';
import { bootstrapTls, CONTROL_PLANE_SPIFFE_ID } from '../k8s/identity.js';
import { CERT_SDS_FILE, writeCertSdsFile } from '../envoy/bootstrap.js';
import { DEFAULT_TRUST_DOMAIN, LocalPki, spiffeId } from '../pki/index.js';
import { freePort } from '../util/net.js';
import { selfCommand } from '../util/self.js';
import { authzConfigMap, demoServerPod, playablePod, POD_PORTS } from './demo-pod-spec.js';
import { envoyImage, tollgateImage } from './images.js';
import { podman, podmanOk } from './podman.js';

/**
 * The demo MCP server's pod, injected by `tollgate inject` and run by `podman kube play` from the
 * images `make images` builds, with NATS, the control plane and a dev issuer beside it (see
 * demo-pod-spec.ts). `make pod-demo` runs it for people; the podman integration test runs the same
 * code and checks it.
 */

export const DEMO_NAMESPACE = 'mcp-demo';
export const DEMO_SERVER = 'demo';
/** Tokens must carry this audience; authz in the pod accepts only it. */
export const DEMO_AUDIENCE = `http://${DEMO_SERVER}.${DEMO_NAMESPACE}.test/mcp`;

export interface DemoPodOptions {
  /** podman pod name (containers are `<name>-<container>`). */
  name: string;
  /** Working directory: keys, the issuer's key ring, pod.yaml, configmap.yaml. Made if missing. */
  dir: string;
  /** Host ports on 127.0.0.1; 0 or unset picks free ones. */
  ports?: Partial<DemoPodPorts>;
}

export interface DemoPodPorts { mcp: number; health: number; nats: number }

export interface DemoPod {
  name: string;
  dir: string;
  ports: DemoPodPorts;
  mcpUrl: string;
  /** Envoy's readiness endpoint, through the sidecar's health port. */
  readyUrl: string;
  natsUrl: string;
  /** Whether `tollgate inject` wrote plain sidecar containers itself (--sidecar-mode containers). */
  injectorContainersMode: boolean;
  /** A token the pod's authz accepts. */
  token(sub: string, team: string): Promise<string>;
  /** podman's name for one of the pod's containers. */
  container(name: string): string;
}

/** Runs the tollgate CLI (the same code this process runs) with stdin, resolving with stdout. */
function tollgateCli(args: string[], stdin: string): Promise<string> {
  const self = selfCommand();
  return new Promise((resolveOut, reject) => {
    const child = spawn(self.cmd, [...self.args, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => { out += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { err += b.toString(); });
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolveOut(out) : reject(new Error(`tollgate ${args[0]} exited ${code}: ${err.trim()}`))));
    child.stdin.end(stdin);
  });
}

/** Readable by the containers' unprivileged users: the pod mounts this directory read-only. */
function shareReadOnly(dir: string): void {
  chmodSync(dir, 0o755);
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) shareReadOnly(p);
    else chmodSync(p, 0o644);
  }
}

/**
 * What a cluster gives the pod and its control plane, issued from a CA of the test's own: the
 * control plane's xDS certificate, the pod's workload certificate (its service account's SPIFFE
 * ID, as `tollgate cert request` would fetch it) and the registration of its sidecar.
 */
async function workloadIdentity(secrets: string, podName: string): Promise<void> {
  const pki = await LocalPki.open(join(secrets, 'pki'));
  await pki.issue('xds-server', { commonName: 'tollgate-controlplane', uris: [CONTROL_PLANE_SPIFFE_ID], ips: ['127.0.0.1'], dnsNames: ['localhost'], usage: 'server' });
  const identity = spiffeId({ trustDomain: DEFAULT_TRUST_DOMAIN, namespace: DEMO_NAMESPACE, serviceAccount: 'default' });
  const sidecar = await pki.issue('sidecar', { commonName: `${DEMO_NAMESPACE}/${podName}`, uris: [identity], usage: 'client' });
  mkdirSync(join(secrets, 'identity'), { recursive: true });
  mkdirSync(join(secrets, 'mesh-ca'), { recursive: true });
  copyFileSync(sidecar.cert, join(secrets, 'identity', 'tls.crt'));
  copyFileSync(sidecar.key, join(secrets, 'identity', 'tls.key'));
  // The SDS document the init container would write, naming the files where the pod mounts them.
  const inPod = bootstrapTls();
  await writeCertSdsFile(join(secrets, 'identity', CERT_SDS_FILE), { cert: inPod.cert, key: inPod.key });
  copyFileSync(pki.caFile, join(secrets, 'mesh-ca', 'ca.crt'));
  writeFileSync(join(secrets, 'registrations.yaml'), formatRegistrations([{
    identity, nodeId: `${DEMO_NAMESPACE}/${podName}`, server: DEMO_SERVER, namespace: DEMO_NAMESPACE,
    listen: { host: '0.0.0.0', port: POD_PORTS.mcp }, mcpPath: '/mcp', upstream: { host: '127.0.0.1', port: 8080 },
    authz: { host: '127.0.0.1', port: POD_PORTS.authz }, resourceUrl: DEMO_AUDIENCE,
  }]));
}

/**
 * Writes the pod's files and plays it. Resolves once podman has started it; the governed path
 * answers a few seconds later (Envoy waits for xDS, authz for its first signed bundle).
 */
export async function startDemoPod(o: DemoPodOptions): Promise<DemoPod> {
  const dir = resolve(o.dir);
  const secrets = join(dir, 'secrets');
  rmSync(secrets, { recursive: true, force: true });
  mkdirSync(secrets, { recursive: true });
  const issuerUrl = `http://127.0.0.1:${POD_PORTS.issuer}`;
  // Creates the issuer's key ring in secrets/issuer; the issuer container serves the same keys.
  await mintDevToken(secrets, issuerUrl, { sub: 'setup', audience: DEMO_AUDIENCE, ttlSec: 60 });
  const signing = await generateSigningKeyPair('EdDSA');
  writeFileSync(join(secrets, 'bundle-signing.key.pem'), signing.privatePem);
  // In a pod the MCP listener must bind the pod's address, which the published host port reaches.
  writeFileSync(join(secrets, 'sidecars.yaml'), 'listen_host: 0.0.0.0\nauthz_timeout_ms: 1000\n');
  await workloadIdentity(secrets, o.name);
  shareReadOnly(secrets);

  // Plain sidecar containers straight from the injector once it has --sidecar-mode; until then
  // playablePod converts the native sidecars the same way.
  const injectorContainersMode = (await tollgateCli(['inject', '-f', '-', '--help'], '')).includes('--sidecar-mode');
  const injected = await tollgateCli([
    'inject', '-f', '-', '--envoy-image', envoyImage(), '--authz-image', tollgateImage(), '--controlplane', `127.0.0.1:${POD_PORTS.xds}`,
    // Envoy speaks mTLS to the control plane with a workload certificate; in a cluster an init
    // container fetches it, here playablePod mounts the one workloadIdentity() issued.
    '--workload-certs', 'https://127.0.0.1:1/v1/certificates',
    ...(injectorContainersMode ? ['--sidecar-mode', 'containers'] : []),
  ], demoServerPod(tollgateImage(), DEMO_SERVER, DEMO_NAMESPACE));

  const ports: DemoPodPorts = {
    mcp: o.ports?.mcp || await freePort(),
    health: o.ports?.health || await freePort(),
    nats: o.ports?.nats || await freePort(),
  };
  writeFileSync(join(dir, 'injected.yaml'), injected);
  writeFileSync(join(dir, 'pod.yaml'), playablePod(injected, { podName: o.name, image: tollgateImage(), hostPorts: ports, secretsDir: secrets }));
  writeFileSync(join(dir, 'configmap.yaml'), authzConfigMap(DEMO_NAMESPACE, DEMO_AUDIENCE, signing.publicPem));
  // kube play returns once every container has started: seconds, more on a loaded machine.
  try {
    await podmanOk(['kube', 'play', '--configmap', join(dir, 'configmap.yaml'), join(dir, 'pod.yaml')], { timeoutMs: 240_000 });
  } catch (e) {
    // A healthy kube play of this pod takes seconds; minutes with no output has been podman
    // waiting on a lock it shares with another object (see images/ensure-podman.sh).
    if (e instanceof Error && /did not finish within/.test(e.message)) {
      throw new Error(`${e.message}\npodman may be deadlocked on its own lock table: with no container running, \`podman system renumber\` repairs it (make podman runs it)`, { cause: e });
    }
    throw e;
  }
  return {
    name: o.name, dir, ports, injectorContainersMode,
    mcpUrl: `http://127.0.0.1:${ports.mcp}/mcp`,
    readyUrl: `http://127.0.0.1:${ports.health}/ready`,
    natsUrl: `nats://127.0.0.1:${ports.nats}`,
    token: (sub, team) => mintDevToken(secrets, issuerUrl, { sub, team, audience: DEMO_AUDIENCE, ttlSec: 3600 }),
    container: (name) => `${o.name}-${name}`,
  };
}

/** Removes the pod and its containers; no error when it does not exist. */
export async function stopDemoPod(name: string): Promise<void> {
  const r = await podman(['pod', 'rm', '--force', '--time', '2', name], { timeoutMs: 60_000 });
  if (r.code !== 0 && !/no pod with name or ID/i.test(r.stderr)) throw new Error(`podman pod rm ${name}: ${r.stderr.trim()}`);
}

async function main(argv: string[]): Promise<number> {
  const [verb, dirArg] = argv;
  const name = process.env.POD_NAME || 'tollgate-demo';
  const dir = dirArg ?? '.state/pod-demo';
  if (verb === 'down') {
    await stopDemoPod(name);
    process.stdout.write(`pod ${name} removed\n`);
    return 0;
  }
  if (verb !== 'up') {
    process.stderr.write('usage: pod-demo up|down [DIR]   (make pod-demo, make pod-demo-down; docs/images.md)\n');
    return 2;
  }
  await stopDemoPod(name);
  const pod = await startDemoPod({ name, dir, ports: { mcp: Number(process.env.POD_MCP_PORT ?? 0), health: Number(process.env.POD_HEALTH_PORT ?? 0), nats: Number(process.env.POD_NATS_PORT ?? 0) } });
  const deadline = Date.now() + 120_000;
  let ready = '';
  while (Date.now() < deadline) {
    ready = await fetch(pod.readyUrl).then((r) => r.text(), () => '');
    if (ready.trim() === 'LIVE') break;
    await new Promise((r) => setTimeout(r, 500));
  }
  process.stdout.write([
    `pod ${name} is running (podman pod ps); files in ${pod.dir}`,
    `  MCP endpoint   ${pod.mcpUrl}   (Envoy sidecar -> authz sidecar -> demo server)`,
    `  readiness      ${pod.readyUrl}   ${ready.trim() || 'not answering yet'}`,
    `  NATS           ${pod.natsUrl}   (decision records: tollgate logs query --nats ${pod.natsUrl})`,
    `  a token        tollgate token --sub alice --team payments --aud ${DEMO_AUDIENCE} --issuer http://127.0.0.1:${POD_PORTS.issuer} --state ${join(pod.dir, 'secrets')}`,
    `  stop it        make pod-demo-down`,
    '',
  ].join('\n'));
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then((code) => process.exit(code), (e: Error) => {
    process.stderr.write(`pod-demo: ${e.message}\n`);
    process.exit(1);
  });
}
