import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { DevIssuer } from '../identity/issuer.js';
import type { DevClaims } from '../identity/mint.js';
import { DemoMcpServer } from '../demo/server.js';
import { staticBootstrap } from '../envoy/bootstrap.js';
import type { SidecarSpec } from '../envoy/resources.js';
import { startEnvoy, type RunningEnvoy } from '../envoy/run.js';
import { ManagedProcess } from '../util/process.js';
import { freePort, waitForPort } from '../util/net.js';
import { projectRoot } from '../util/tools.js';
import { selfCommand } from '../util/self.js';

/** Ports of the local mesh; 0 means "pick a free one" (tests), the defaults are the brief's. */
export interface MeshPorts {
  envoy: number;
  envoyAdmin: number;
  authz: number;
  issuer: number;
}

export const DEFAULT_PORTS: MeshPorts = { envoy: 10000, envoyAdmin: 9901, authz: 9191, issuer: 5556 };

export interface LocalMeshOptions {
  policies: string;
  stateDir: string;
  ports?: Partial<MeshPorts>;
  /** The MCP server to govern; the built-in demo server when unset. */
  upstream?: { host: string; port: number };
  server?: string;
  namespace?: string;
  /** Extra `tollgate authz` flags. */
  authzArgs?: string[];
  /** Echo every component's log to stderr. */
  echo?: boolean;
  /** ext_authz deadline in Envoy. */
  authzTimeoutMs?: number;
}

export interface MeshEndpoints {
  mcp: string;
  resourceMetadata: string;
  envoyAdmin: string;
  authz: string;
  issuer: string;
  upstream: string;
}

async function pick(p: number | undefined, dflt: number): Promise<number> {
  if (p === undefined) return dflt;
  return p === 0 ? freePort() : p;
}

/**
 * The whole governed path on loopback, each part a real process or server: dev OIDC issuer, the
 * MCP server, authz (its own process, so it can be killed), and Envoy in front.
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
  ) {}

  static async start(o: LocalMeshOptions): Promise<LocalMesh> {
    const stateDir = resolve(o.stateDir);
    mkdirSync(stateDir, { recursive: true });
    const ports: MeshPorts = {
      envoy: await pick(o.ports?.envoy, DEFAULT_PORTS.envoy),
      envoyAdmin: await pick(o.ports?.envoyAdmin, DEFAULT_PORTS.envoyAdmin),
      authz: await pick(o.ports?.authz, DEFAULT_PORTS.authz),
      issuer: await pick(o.ports?.issuer, DEFAULT_PORTS.issuer),
    };
    const started: Array<{ stop(): Promise<void> }> = [];
    try {
      const issuer = await DevIssuer.start({ port: ports.issuer, stateDir });
      started.push({ stop: () => issuer.close() });
      const demo = o.upstream ? null : await DemoMcpServer.start({ port: 0 });
      if (demo) started.push({ stop: () => demo.close() });
      const upstream = o.upstream ?? { host: '127.0.0.1', port: demo!.port };

      const base = `http://127.0.0.1:${ports.envoy}`;
      const mcp = `${base}/mcp`;
      const resourceMetadata = `${base}/.well-known/oauth-protected-resource/mcp`;
      const server = o.server ?? 'demo';
      const namespace = o.namespace ?? 'default';

      const self = selfCommand();
      const startAuthzProcess = (): Promise<ManagedProcess> => ManagedProcess.start('authz', self.cmd, [
        ...self.args, 'authz',
        '--listen', `127.0.0.1:${ports.authz}`, '--policies', resolve(o.policies), '--issuer', issuer.url,
        '--audience', mcp, '--server', server, '--namespace', namespace, '--resource-metadata', resourceMetadata,
        '--state', stateDir, ...(o.authzArgs ?? []),
      ], { readyPattern: /authz listening on/, echo: o.echo, timeoutMs: 60_000, cwd: projectRoot() });
      const authz = await startAuthzProcess();
      started.push({ stop: () => authz.stop() });

      const spec: SidecarSpec = {
        nodeId: `${namespace}/${server}`, server, namespace,
        listen: { host: '127.0.0.1', port: ports.envoy }, mcpPath: '/mcp', upstream,
        authz: { host: '127.0.0.1', port: ports.authz, timeoutMs: o.authzTimeoutMs ?? 1000 },
        maxRequestBytes: 1024 * 1024,
        resourceMetadata: {
          resource: mcp, authorization_servers: [issuer.url], bearer_methods_supported: ['header'],
          resource_name: `MCP server "${server}" governed by Tollgate`,
        },
        extProc: true,
      };
      const envoy = await startEnvoy({ config: staticBootstrap(spec, ports.envoyAdmin), adminPort: ports.envoyAdmin, echo: o.echo });
      started.push({ stop: () => envoy.stop() });
      await waitForPort(ports.envoy);
      return new LocalMesh({
        mcp, resourceMetadata, envoyAdmin: envoy.adminUrl, authz: `127.0.0.1:${ports.authz}`, issuer: issuer.url,
        upstream: `http://${upstream.host}:${upstream.port}/mcp`,
      }, issuer, demo, authz, startAuthzProcess, envoy, mcp);
    } catch (e) {
      for (const s of started.reverse()) await s.stop().catch(() => undefined);
      throw e;
    }
  }

  /** Starts authz again with the same flags (after a test killed it); Envoy reconnects on its own. */
  async restartAuthz(): Promise<void> {
    if (this.authz.running) await this.authz.stop();
    this.authz = await this.startAuthzProcess();
  }

  /** A token for this mesh's audience. */
  token(claims: Omit<DevClaims, 'audience' | 'ttlSec'> & Partial<Pick<DevClaims, 'audience' | 'ttlSec'>>): Promise<string> {
    return this.issuer.mint({ ttlSec: 3600, ...claims, audience: claims.audience ?? this.audience });
  }

  async stop(): Promise<void> {
    await this.envoy.stop().catch(() => undefined);
    await this.authz.stop().catch(() => undefined);
    await this.demo?.close().catch(() => undefined);
    await this.issuer.close().catch(() => undefined);
  }
}
