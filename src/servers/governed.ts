import { join } from 'node:path';
import { LocalMesh, type LocalMeshOptions } from '../mesh/local.js';
import { startServer, type RunningServer, type ServerRunSpec } from './run.js';

export interface GovernedServer { server: RunningServer; mesh: LocalMesh }

/**
 * Servers Tollgate runs, each behind its own Envoy + authz pair as a pod is in a cluster (same
 * policies, same records, same budgets as any HTTP server), all trusting one issuer. The first
 * server gets the ports the operator chose; the others free ones. Each extra server keeps its
 * decision log in <state>/servers/<name>/.
 */
export async function startGoverned(specs: ServerRunSpec[], meshOptions: Omit<LocalMeshOptions, 'upstream' | 'server' | 'issuer'>): Promise<GovernedServer[]> {
  const out: GovernedServer[] = [];
  try {
    for (const [i, spec] of specs.entries()) {
      const server = await startServer(spec);
      let mesh: LocalMesh;
      try {
        mesh = await LocalMesh.start({
          ...meshOptions,
          stateDir: i === 0 ? meshOptions.stateDir : join(meshOptions.stateDir, 'servers', spec.name),
          ports: i === 0 ? meshOptions.ports : { envoy: 0, envoyAdmin: 0, authz: 0, issuer: 0, xds: 0, nats: 0, metrics: 0 },
          upstream: { host: '127.0.0.1', port: server.bridge.port },
          server: spec.name,
          issuer: out[0]?.mesh.issuer,
          authzArgs: [...(meshOptions.authzArgs ?? []), '--server-provenance', JSON.stringify(server.provenance)],
        });
      } catch (e) {
        await server.stop();
        throw e;
      }
      out.push({ server, mesh });
    }
    return out;
  } catch (e) {
    await stopGoverned(out);
    throw e;
  }
}

export async function stopGoverned(all: GovernedServer[]): Promise<void> {
  // The first mesh owns the shared issuer: stop it last.
  for (const g of [...all].reverse()) {
    await g.mesh.stop().catch(() => undefined);
    await g.server.stop().catch(() => undefined);
  }
}
