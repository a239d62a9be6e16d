import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DevIssuer } from '../identity/issuer.js';
import type { DevClaims } from '../identity/mint.js';
import { DemoMcpServer } from '../demo/server.js';
import { adsBootstrap, staticBootstrap } from '../envoy/bootstrap.js';
import type { SidecarSpec } from '../envoy/resources.js';
import { startEnvoy, type RunningEnvoy } from '../envoy/run.js';
import { generateSigningKeyPair } from '../bundle/keys.js';
import { ManagedProcess } from '../util/process.js';
import { NatsCluster, NatsServer } from '../nats/server.js';
import { freePort } from '../util/net.js';
import { LocalPki, spiffeId, DEFAULT_TRUST_DOMAIN, type CertFiles } from '../pki/index.js';
import { formatRegistrations } from '../controlplane/registrations.js';
import { waitForListener } from '../envoy/listeners.js';
import { LISTENER_NAME } from '../envoy/resources.js';
import { checkPortsFree } from './ports.js';
import { prepareStateDir } from './state-dir.js';
import { issueNatsCredentials, type ComponentCredential } from '../nats/credentials.js';
import { projectRoot } from '../util/tools.js';
import { selfCommand } from '../util/self.js';
import { AUTHZ_NODE_FLAGS } from '../authz/node-flags.js';

/** Ports of the local mesh; 0 means "pick a free one" (tests), the defaults are the brief's. */
export interface MeshPorts {
  envoy: number;
  envoyAdmin: number;
  authz: number;
  issuer: number;
  xds: number;
  nats: number;
  metrics: number;
  /** The control plane's admin listener (/metrics, /status); control-plane mode only. */
  controlPlaneMetrics: number;
}

/** controlPlaneMetrics 0: a free port (it is recorded in the mesh file, where `status` finds it). */
export const DEFAULT_PORTS: MeshPorts = { envoy: 10000, envoyAdmin: 9901, authz: 9191, issuer: 5556, xds: 18000, nats: 4222, metrics: 9464, controlPlaneMetrics: 0 };

/** One more replica of a server's sidecar pair (see LocalMesh.startReplica). */
export interface SidecarReplica {
  /** Its Envoy's MCP endpoint. */
  mcp: string;
  authz: ManagedProcess;
  /** Its state directory; its decision log is `<stateDir>/decisions`. */
  stateDir: string;
  stop(): Promise<void>;
}

export interface LocalMeshOptions {
  policies: string;
  stateDir: string;
  ports?: Partial<MeshPorts>;
  /**
   * true: run as a cluster does — NATS, the control plane (signed bundles + xDS), authz following
   * the published bundles, Envoy configured only over ADS. false: authz builds the policy
   * directory itself and Envoy gets a static bootstrap (fewer moving parts, faster start).
   */
  controlPlane?: boolean;
  /** The MCP server to govern; the built-in demo server when unset. */
  upstream?: { host: string; port: number };
  server?: string;
  namespace?: string;
  /** Share this (running) issuer instead of starting one: several governed servers, one identity provider. */
  issuer?: DevIssuer;
  /**
   * A real authorization server's issuer URL (e.g. Hydra, `tollgate up --idp hydra`): authz trusts
   * it and the RFC 9728 metadata names it. The dev issuer still runs for `mesh.token()`.
   */
  authorizationServer?: string;
  /** Extra `tollgate authz` flags. */
  authzArgs?: string[];
  /** Token budgets file, enforced by authz and declared by the control plane (docs/budgets.md). */
  budgets?: string;
  /** Run NATS as a cluster of this many nats-servers (routes on loopback), streams with 3 replicas. */
  natsCluster?: number;
  /** Echo every component's log to stderr. */
  echo?: boolean;
  /** ext_authz deadline in Envoy. */
  authzTimeoutMs?: number;
  /**
   * Enforce tool pins (docs/tool-pinning.md; control-plane mode only): authz follows the pin bucket
   * in the mesh's NATS and trusts approvals signed by the dev approver key under <state>/keys.
   */
  pins?: boolean;
  /**
   * Envoy reaches authz over mTLS (default true): on a workstation every local process can reach
   * loopback ports, unlike a pod's loopback. false: plaintext, as an in-pod authz sidecar.
   */
  authzTls?: boolean;
  /** How long the control plane keeps a disconnected sidecar's config (default 60 s). */
  xdsForgetAfterMs?: number;
  /**
   * OTLP/gRPC address (host:port) of an OpenTelemetry Collector (control-plane mode): the control
   * plane gives Envoy an OpenTelemetry tracer to it, and authz exports its spans there too.
   */
  otelCollector?: string;
}

/** Identities of the local mesh's workloads (docs/security.md). */
export const CONTROL_PLANE_IDENTITY = spiffeId({ trustDomain: DEFAULT_TRUST_DOMAIN, namespace: 'tollgate-system', serviceAccount: 'tollgate-controlplane' });
export function sidecarIdentity(namespace: string, server: string): string {
  return spiffeId({ trustDomain: DEFAULT_TRUST_DOMAIN, namespace, serviceAccount: server });
}
export function authzIdentity(namespace: string): string {
  return spiffeId({ trustDomain: DEFAULT_TRUST_DOMAIN, namespace, serviceAccount: 'tollgate-authz' });
}

/** Certificates `tollgate up` issues from the CA in its state directory. */
export interface MeshCerts {
  pki: LocalPki;
  controlPlane: CertFiles;
  sidecar: CertFiles;
  authz: CertFiles;
}

async function issueMeshCerts(stateDir: string, namespace: string, server: string): Promise<MeshCerts> {
  const pki = await LocalPki.open(join(stateDir, 'pki'));
  const loopback = { ips: ['127.0.0.1'], dnsNames: ['localhost'] };
  return {
    pki,
    controlPlane: await pki.issue('xds-server', { commonName: 'tollgate-controlplane', uris: [CONTROL_PLANE_IDENTITY], ...loopback, usage: 'server' }),
    sidecar: await pki.issue(`sidecar-${namespace}-${server}`, { commonName: `${namespace}/${server}`, uris: [sidecarIdentity(namespace, server)], usage: 'client' }),
    authz: await pki.issue(`authz-${namespace}`, { commonName: 'tollgate-authz', uris: [authzIdentity(namespace)], ...loopback, usage: 'server' }),
  };
}

export interface MeshEndpoints {
  mcp: string;
  resourceMetadata: string;
  envoyAdmin: string;
  authz: string;
  issuer: string;
  upstream: string;
  xds: string | null;
  /** The control plane's /metrics, /status (xDS refusals, streams); control-plane mode only. */
  controlPlaneMetrics: string | null;
  nats: string | null;
  metrics: string;
}

/** authz's standard OTel variables for an OTLP/gRPC collector at host:port (docs/observability.md). */
export function authzOtelEnv(collector: string): Record<string, string> {
  return { OTEL_EXPORTER_OTLP_ENDPOINT: `http://${collector}`, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' };
}

/**
 * The port to use: the default when unset, the one given, or for 0 a free one not already `taken`
 * by this mesh (the kernel may hand the same ephemeral port to two probes in a row).
 */
async function pick(p: number | undefined, dflt: number, taken: Set<number>): Promise<number> {
  if (p === undefined) return dflt;
  if (p !== 0) return p;
  for (let i = 0; i < 20; i++) {
    const port = await freePort();
    if (!taken.has(port)) {
      taken.add(port);
      return port;
    }
  }
  throw new Error('no free loopback port found that this mesh does not already use');
}

interface Stoppable { stop(): Promise<void> }

/** A process of the mesh that ended while nobody was stopping it (LocalMesh.watchChildren). */
export interface ChildExit {
  /** envoy, authz, controlplane or nats-server. */
  name: string;
  pid: number | undefined;
  /** Exit code, or null when a signal ended it or the status is not known. */
  code: number | null;
  /** The signal's name; "a signal" where only that much is known (Envoy). */
  signal: string | null;
  /** Its last lines of output (stderr and stdout as it wrote them), oldest first. */
  tail: string[];
}

/** "envoy (pid 123) exited unexpectedly: killed by SIGKILL", with its last lines of output below. */
export function describeChildExit(e: ChildExit): string {
  const how = e.signal ? `killed by ${e.signal}` : e.code !== null ? `exit code ${e.code}` : 'exit status unknown';
  const head = `${e.name}${e.pid !== undefined ? ` (pid ${e.pid})` : ''} exited unexpectedly: ${how}`;
  return e.tail.length ? `${head}; its last output:\n${e.tail.map((l) => `    ${l}`).join('\n')}` : `${head}; it wrote nothing`;
}

/** The last non-empty lines of a process's output, each cut to a readable length. */
function lastLines(output: string, n = 10): string[] {
  return output.split('\n').map((l) => l.trimEnd()).filter((l) => l !== '').slice(-n).map((l) => (l.length > 300 ? `${l.slice(0, 300)}…` : l));
}

/** A process of the mesh, as the watcher sees it. */
interface Watched {
  name: string;
  /** The object whose exit this is (to tell a replaced authz from the current one). */
  ref: object;
  running(): boolean;
  exit(): Promise<ChildExit>;
}

function watchedProcess(name: string, p: ManagedProcess): Watched {
  return {
    name, ref: p, running: () => p.running,
    exit: async () => {
      await p.exited;
      return { name, pid: p.pid, code: p.child.exitCode, signal: p.child.signalCode, tail: lastLines(p.output) };
    },
  };
}

/** Dev bundle-signing keys under the state dir, made on first use. */
async function devSigningKeys(stateDir: string, name = 'bundle-signing'): Promise<{ privateKey: string; publicKey: string }> {
  const dir = join(stateDir, 'keys');
  const privateKey = join(dir, `${name}.key.pem`);
  const publicKey = join(dir, `${name}.pub.pem`);
  if (!existsSync(privateKey) || !existsSync(publicKey)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const pair = await generateSigningKeyPair('EdDSA');
    writeFileSync(privateKey, pair.privatePem, { mode: 0o600 });
    writeFileSync(publicKey, pair.publicPem, { mode: 0o644 });
  }
  return { privateKey, publicKey };
}

/**
 * The whole governed path on loopback, each part a real process or server: dev OIDC issuer, the
 * MCP server, authz (its own process, so it can be killed), Envoy in front and, in control-plane
 * mode, NATS and the control plane too.
 */
export class LocalMesh {
  private constructor(
    readonly endpoints: MeshEndpoints,
    readonly issuer: DevIssuer,
    readonly demo: DemoMcpServer | null,
    public authz: ManagedProcess,
    private readonly startAuthzProcess: () => Promise<ManagedProcess>,
    readonly envoy: RunningEnvoy,
    readonly audience: string,
    readonly controlPlane: ManagedProcess | null,
    readonly nats: NatsServer | null,
    /** Sidecar defaults file the control plane watches (control-plane mode). */
    readonly sidecarConfig: string | null,
    private readonly others: Stoppable[],
    /** Certificates of the mesh's workloads and its CA. */
    readonly certs: MeshCerts,
    /** NATS credentials by component (controlplane, authz, reviewer, operator), control-plane mode. */
    readonly natsCredentials: ReadonlyMap<string, ComponentCredential>,
    /** Dev approver key pair for `tollgate tools approve`, when pins are on. */
    readonly approverKeys: { privateKey: string; publicKey: string } | null = null,
    private readonly replicaStarter: ((n: number) => Promise<SidecarReplica>) | null = null,
  ) {}

  /** Every nats-server of the mesh (one, or the cluster's members), for watchChildren. */
  private natsServers: NatsServer[] = [];
  private stopping = false;
  /** Processes stopped on purpose (restartAuthz): their exit is no failure. */
  private readonly expectedExits = new WeakSet<object>();

  static async start(o: LocalMeshOptions): Promise<LocalMesh> {
    const stateDir = resolve(o.stateDir);
    // Private when made here (0700); `tollgate up` reports the mode of one that was there already.
    prepareStateDir(stateDir);
    const withCp = o.controlPlane ?? false;
    if (o.otelCollector && !withCp) throw new Error('otelCollector configures Envoy through the control plane: it needs controlPlane: true');
    const taken = new Set<number>();
    const ports: MeshPorts = {
      envoy: await pick(o.ports?.envoy, DEFAULT_PORTS.envoy, taken),
      envoyAdmin: await pick(o.ports?.envoyAdmin, DEFAULT_PORTS.envoyAdmin, taken),
      authz: await pick(o.ports?.authz, DEFAULT_PORTS.authz, taken),
      issuer: await pick(o.ports?.issuer, DEFAULT_PORTS.issuer, taken),
      xds: withCp ? await pick(o.ports?.xds, DEFAULT_PORTS.xds, taken) : 0,
      nats: withCp ? await pick(o.ports?.nats, DEFAULT_PORTS.nats, taken) : 0,
      // Unlike the others, unset means a free port: tests that predate it must not collide on 9464.
      metrics: await pick(o.ports?.metrics ?? 0, DEFAULT_PORTS.metrics, taken),
      controlPlaneMetrics: withCp ? await pick(o.ports?.controlPlaneMetrics || 0, 0, taken) : 0,
    };
    await checkPortsFree([
      { port: ports.envoy, what: 'Envoy MCP listener', flag: '--envoy-port' },
      { port: ports.envoyAdmin, what: 'Envoy admin', flag: '--admin-port' },
      { port: ports.authz, what: 'authz gRPC', flag: '--authz-port' },
      { port: ports.issuer, what: 'dev OIDC issuer', flag: '--issuer-port' },
      { port: ports.xds, what: 'control plane xDS', flag: '--xds-port' },
      { port: ports.nats, what: 'NATS', flag: '--nats-port' },
      { port: ports.metrics, what: 'authz metrics', flag: '--metrics-port' },
      { port: ports.controlPlaneMetrics, what: 'control plane metrics', flag: '--controlplane-metrics-port' },
    ]);
    const started: Stoppable[] = [];
    const self = selfCommand();
    const cli = (name: string, args: string[], ready: RegExp): Promise<ManagedProcess> =>
      // authz gets its V8 heap flags (src/authz/node-flags.ts), as in a pod.
      ManagedProcess.start(name, self.cmd, [...(name === 'authz' ? AUTHZ_NODE_FLAGS : []), ...self.args, ...args], {
        readyPattern: ready, echo: o.echo, timeoutMs: 90_000, cwd: projectRoot(),
        ...(name === 'authz' && o.otelCollector ? { env: { ...process.env, ...authzOtelEnv(o.otelCollector) } } : {}),
      });
    try {
      const issuer = o.issuer ?? await DevIssuer.start({ port: ports.issuer, stateDir });
      if (!o.issuer) started.push({ stop: () => issuer.close() });
      const demo = o.upstream ? null : await DemoMcpServer.start({ port: 0 });
      if (demo) started.push({ stop: () => demo.close() });
      const upstream = o.upstream ?? { host: '127.0.0.1', port: demo!.port };
      const trustedIssuer = o.authorizationServer ?? issuer.url;

      const base = `http://127.0.0.1:${ports.envoy}`;
      const mcp = `${base}/mcp`;
      const resourceMetadata = `${base}/.well-known/oauth-protected-resource/mcp`;
      const server = o.server ?? 'demo';
      const namespace = o.namespace ?? 'default';
      const authzTimeoutMs = o.authzTimeoutMs ?? 1000;
      const authzTls = o.authzTls ?? true;
      const certs = await issueMeshCerts(stateDir, namespace, server);

      let nats: NatsServer | null = null;
      let natsServers: NatsServer[] = [];
      let natsSeeds: string | null = null;
      let controlPlane: ManagedProcess | null = null;
      let sidecarConfig: string | null = null;
      let cpMetrics: string | null = null;
      let policyArgs = ['--policies', resolve(o.policies)];
      let natsCredentials = new Map<string, ComponentCredential>();
      const budgetArgs = o.budgets ? ['--budgets', resolve(o.budgets)] : [];
      if (withCp) {
        // NATS with TLS and one credential per component, least privilege (docs/security.md "NATS").
        const creds = await issueNatsCredentials(await LocalPki.open(join(stateDir, 'pki')), [
          // The same SPIFFE IDs the components have on xDS and authz gRPC (docs/security.md).
          { name: 'controlplane', role: 'controlplane', namespace: 'tollgate-system', serviceAccount: 'tollgate-controlplane' },
          { name: 'authz', role: 'authz', namespace, serviceAccount: 'tollgate-authz' },
          { name: 'reviewer', role: 'reviewer', namespace: 'tollgate-system', serviceAccount: 'tollgate-reviewer' },
          { name: 'operator', role: 'operator', namespace: 'tollgate-system', serviceAccount: 'tollgate-operator' },
          // For `tollgate operator` against a dev API server (docs/kubernetes.md, "Try it").
          { name: 'kube-operator', role: 'kube-operator', namespace: 'tollgate-system', serviceAccount: 'tollgate-kube-operator' },
        ]);
        natsCredentials = creds.clients;
        let natsUrl: string;
        let replicas = 1;
        if ((o.natsCluster ?? 1) > 1) {
          const cluster = await NatsCluster.start({
            size: o.natsCluster!, ports: [ports.nats], storeDir: join(stateDir, 'nats-cluster'), echo: o.echo, tls: creds.server, users: creds.users,
          });
          started.push({ stop: () => cluster.stop() });
          nats = cluster.members[0]!;
          natsServers = [...cluster.members];
          natsUrl = cluster.urls.join(',');
          replicas = o.natsCluster! >= 3 ? 3 : 1;
        } else {
          nats = await NatsServer.start({ port: ports.nats, storeDir: join(stateDir, 'nats'), echo: o.echo, tls: creds.server, users: creds.users });
          const natsRef = nats;
          natsServers = [nats];
          started.push({ stop: () => natsRef.stop() });
          natsUrl = nats.url;
        }
        const keys = await devSigningKeys(stateDir);
        sidecarConfig = join(stateDir, 'sidecars.yaml');
        writeFileSync(sidecarConfig, `# Sidecar defaults pushed over xDS; edit and save to push a change live.\nauthz_timeout_ms: ${authzTimeoutMs}\n`);
        // What the control plane serves, and to which certificate identity: the one source of
        // sidecar config (never the connecting Envoy's own node metadata).
        const registrations = join(stateDir, 'sidecar-registrations.yaml');
        writeFileSync(registrations, formatRegistrations([{
          identity: sidecarIdentity(namespace, server), nodeId: `${namespace}/${server}`, server, namespace,
          listen: { host: '127.0.0.1', port: ports.envoy }, mcpPath: '/mcp', upstream,
          authz: { host: '127.0.0.1', port: ports.authz }, resourceUrl: mcp,
          ...(authzTls ? { authzIdentity: authzIdentity(namespace) } : {}),
        }]), { mode: 0o600 });
        natsSeeds = natsUrl;
        const natsFlags = (name: string): string[] => {
          const t = creds.clients.get(name)!.tls;
          return ['--nats', natsUrl, '--nats-ca', t.ca, '--nats-cert', t.cert, '--nats-key', t.key];
        };
        controlPlane = await cli('controlplane', [
          'controlplane', 'serve', '--policies', resolve(o.policies), '--signing-key', keys.privateKey, ...natsFlags('controlplane'),
          '--state', stateDir, '--replicas', String(replicas), ...budgetArgs,
          '--xds-listen', `127.0.0.1:${ports.xds}`, '--issuer', trustedIssuer, '--authz', `127.0.0.1:${ports.authz}`,
          '--sidecar-config', sidecarConfig, '--registrations', registrations,
          '--xds-cert', certs.controlPlane.cert, '--xds-key', certs.controlPlane.key, '--mesh-ca', certs.controlPlane.ca,
          ...(o.xdsForgetAfterMs !== undefined ? ['--forget-after', `${o.xdsForgetAfterMs}ms`] : []),
          '--metrics-listen', (cpMetrics = `127.0.0.1:${ports.controlPlaneMetrics}`),
          ...(o.otelCollector ? ['--otel-collector', o.otelCollector] : []),
        ], /published revision|unchanged: revision/);
        const cpRef = controlPlane;
        started.push({ stop: () => cpRef.stop() });
        policyArgs = [...natsFlags('authz'), '--policy-from-nats', '--verification-key', keys.publicKey, '--replicate-decisions'];
      }
      if (o.pins && !nats) throw new Error('tool pinning needs the control-plane mode (NATS holds the pins)');
      const approverKeys = o.pins ? await devSigningKeys(stateDir, 'pin-approver') : null;
      if (approverKeys && nats) policyArgs.push('--pins-nats', natsSeeds!, '--pin-approver-key', approverKeys.publicKey);

      const authzArgsAt = (port: number, state: string, metricsPort: number): string[] => [
        'authz', '--listen', `127.0.0.1:${port}`, ...policyArgs, '--issuer', trustedIssuer,
        '--audience', mcp, '--server', server, '--namespace', namespace, '--resource-metadata', resourceMetadata,
        '--state', state, '--metrics-listen', `127.0.0.1:${metricsPort}`, ...budgetArgs,
        ...(authzTls ? ['--tls-cert', certs.authz.cert, '--tls-key', certs.authz.key, '--client-ca', certs.authz.ca, '--allow-peer', sidecarIdentity(namespace, server)] : []),
        ...(o.authzArgs ?? []),
      ];
      // Ready once it listens and has a policy: before that every call would be refused.
      const AUTHZ_READY = /authz listening on[\s\S]*"policy loaded"|"policy loaded"[\s\S]*authz listening on/;
      const startAuthzProcess = (): Promise<ManagedProcess> => cli('authz', authzArgsAt(ports.authz, stateDir, ports.metrics), AUTHZ_READY);
      const authz = await startAuthzProcess();
      started.push({ stop: () => authz.stop() });

      const resourceMeta = { resource: mcp, authorization_servers: [trustedIssuer], bearer_methods_supported: ['header'], resource_name: `MCP server "${server}" governed by Tollgate` };
      // Another replica of this server's sidecar pair, as a second pod would run it: its own authz
      // (same flags, own state and decision log, same NATS) and its own Envoy in front of the same
      // server, configured statically (the control plane registers one sidecar per server here).
      const replicaStarter = async (n: number): Promise<SidecarReplica> => {
        const [rAuthz, rMetrics, rEnvoy, rAdmin] = [await freePort(), await freePort(), await freePort(), await freePort()];
        const rState = join(stateDir, `replica-${n}`);
        mkdirSync(rState, { recursive: true });
        const proc = await cli('authz', authzArgsAt(rAuthz, rState, rMetrics), AUTHZ_READY);
        let rEnvoyProc: RunningEnvoy;
        try {
          rEnvoyProc = await startEnvoy({
            config: staticBootstrap({
              nodeId: `${namespace}/${server}-replica-${n}`, server, namespace,
              listen: { host: '127.0.0.1', port: rEnvoy }, mcpPath: '/mcp', upstream,
              authz: { host: '127.0.0.1', port: rAuthz, timeoutMs: authzTimeoutMs, ...(authzTls ? { tlsIdentity: authzIdentity(namespace) } : {}) },
              maxRequestBytes: 1024 * 1024, resourceMetadata: resourceMeta, extProc: true,
            } satisfies SidecarSpec, rAdmin, undefined, certs.sidecar),
            adminPort: rAdmin, echo: o.echo,
          });
          await waitForListener(rEnvoyProc, LISTENER_NAME, rEnvoy);
        } catch (e) { await proc.stop().catch(() => undefined); throw e; }
        const envoyRef = rEnvoyProc;
        return {
          mcp: `http://127.0.0.1:${rEnvoy}/mcp`, authz: proc, stateDir: rState,
          stop: async () => { await envoyRef.stop().catch(() => undefined); await proc.stop().catch(() => undefined); },
        };
      };
      const config = withCp
        ? adsBootstrap({
          nodeId: `${namespace}/${server}`, cluster: `${namespace}/${server}`, adminPort: ports.envoyAdmin,
          xds: { host: '127.0.0.1', port: ports.xds },
          // Informational only: the control plane builds this sidecar from its registration.
          metadata: { server, namespace },
          tls: { ...certs.sidecar, controlPlaneIdentity: CONTROL_PLANE_IDENTITY },
        })
        : staticBootstrap({
          nodeId: `${namespace}/${server}`, server, namespace,
          listen: { host: '127.0.0.1', port: ports.envoy }, mcpPath: '/mcp', upstream,
          authz: { host: '127.0.0.1', port: ports.authz, timeoutMs: authzTimeoutMs, ...(authzTls ? { tlsIdentity: authzIdentity(namespace) } : {}) },
          maxRequestBytes: 1024 * 1024, resourceMetadata: resourceMeta, extProc: true,
        } satisfies SidecarSpec, ports.envoyAdmin, undefined, certs.sidecar);
      const envoy = await startEnvoy({ config, adminPort: ports.envoyAdmin, echo: o.echo });
      started.push({ stop: () => envoy.stop() });
      // Not "something answers on the port": Envoy itself must hold it, or clients reach a stranger.
      await waitForListener(envoy, LISTENER_NAME, ports.envoy);
      const mesh = new LocalMesh({
        mcp, resourceMetadata, envoyAdmin: envoy.adminUrl, authz: `127.0.0.1:${ports.authz}`, issuer: trustedIssuer,
        upstream: `http://${upstream.host}:${upstream.port}/mcp`, xds: withCp ? `127.0.0.1:${ports.xds}` : null, nats: natsSeeds,
        controlPlaneMetrics: cpMetrics ? `http://${cpMetrics}` : null,
        metrics: `http://127.0.0.1:${ports.metrics}`,
      }, issuer, demo, authz, startAuthzProcess, envoy, mcp, controlPlane, nats, sidecarConfig, started, certs, natsCredentials, approverKeys, replicaStarter);
      mesh.natsServers = natsServers;
      return mesh;
    } catch (e) {
      for (const s of started.reverse()) await s.stop().catch(() => undefined);
      throw e;
    }
  }

  /** Starts authz again with the same flags (after a test killed it); Envoy reconnects on its own. */
  async restartAuthz(): Promise<void> {
    this.expectedExits.add(this.authz);
    if (this.authz.running) await this.authz.stop();
    this.authz = await this.startAuthzProcess();
  }

  private replicas = 0;
  /**
   * Starts another replica of the server's sidecar pair (authz + Envoy, as in a second pod),
   * sharing this mesh's NATS, issuer and server; stopped with the mesh, or earlier by the caller.
   * Tokens minted by `token()` work on it: the replica serves the same resource.
   */
  async startReplica(): Promise<SidecarReplica> {
    const r = await this.replicaStarter!(++this.replicas + 1);
    this.others.push(r);
    return r;
  }

  /** A token for this mesh's audience. */
  token(claims: Omit<DevClaims, 'audience' | 'ttlSec'> & Partial<Pick<DevClaims, 'audience' | 'ttlSec'>>): Promise<string> {
    return this.issuer.mint({ ttlSec: 3600, ...claims, audience: claims.audience ?? this.audience });
  }

  /** The mesh's own processes: Envoy, authz, the control plane and NATS (the issuer and demo server run in this process). */
  private watched(): Watched[] {
    const envoy = this.envoy;
    const many = this.natsServers.length > 1;
    return [
      {
        name: 'envoy', ref: envoy, running: () => envoy.running,
        exit: async () => {
          // RunningEnvoy reports a signal as -1, without its name.
          const code = await envoy.exited;
          return { name: 'envoy', pid: envoy.pid, code: code === -1 ? null : code, signal: code === -1 ? 'a signal' : null, tail: lastLines(envoy.output) };
        },
      },
      watchedProcess('authz', this.authz),
      ...(this.controlPlane ? [watchedProcess('controlplane', this.controlPlane)] : []),
      ...this.natsServers.map((n, i): Watched => {
        const name = many ? `nats-server ${i + 1} of ${this.natsServers.length}` : 'nats-server';
        return { name, ref: n, running: () => n.running, exit: () => Promise.resolve({ name, pid: n.pid, code: null, signal: null, tail: lastLines(n.output) }) };
      }),
    ];
  }

  /**
   * Calls onExit once, for the first of the mesh's processes (Envoy, authz, control plane, NATS)
   * that ends while nobody is stopping it: the mesh has no restart policy, so such a mesh is
   * broken and its owner should stop it (`tollgate up` does: fail closed, saying which and why).
   * Exits during stop() and restartAuthz() are not reported. Returns a function that stops watching.
   */
  watchChildren(onExit: (e: ChildExit) => void, everyMs = 250): () => void {
    let done = false;
    let reporting = false;
    const check = (): void => {
      if (done || reporting || this.stopping) return;
      const gone = this.watched().find((w) => !w.running() && !this.expectedExits.has(w.ref));
      if (!gone) return;
      reporting = true;
      void gone.exit().then((e) => {
        if (done || this.stopping) return;
        done = true;
        clearInterval(timer);
        onExit(e);
      });
    };
    const timer = setInterval(check, everyMs);
    // Envoy's exit is reported at once; the others within everyMs.
    void this.envoy.exited.then(check);
    return () => {
      done = true;
      clearInterval(timer);
    };
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.envoy.stop().catch(() => undefined);
    await this.authz.stop().catch(() => undefined);
    for (const s of [...this.others].reverse()) await s.stop().catch(() => undefined);
  }
}
