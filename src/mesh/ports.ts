import { createServer } from 'node:net';

/** One port the local mesh is about to listen on, and the flag that moves it. */
export interface PlannedPort {
  port: number;
  /** What listens there, e.g. "Envoy MCP listener". */
  what: string;
  /** The `tollgate up` flag that picks another port, e.g. "--envoy-port". */
  flag: string;
}

export class PortInUseError extends Error {
  constructor(readonly planned: PlannedPort, host: string, cause: string) {
    super(
      `port ${planned.port} (${planned.what}) on ${host} is ${cause}. ` +
      `Stop what holds it (\`ss -ltnp 'sport = :${planned.port}'\` shows the process) or choose another port with ${planned.flag} N.`,
    );
    this.name = 'PortInUseError';
  }
}

function tryBind(port: number, host: string): Promise<string | null> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'EADDRINUSE' ? 'already in use' : e.code === 'EACCES' ? 'not allowed for this user' : e.message));
    // No SO_REUSEPORT here, so a holder that set it (another Envoy) is found too.
    s.listen({ port, host, exclusive: true }, () => s.close(() => resolve(null)));
  });
}

/**
 * Checks, before anything starts, that every port can be bound: a taken port is reported at once,
 * naming the port, what needed it and the flag to change it, instead of a component failing (or,
 * for Envoy, a client reaching whatever holds the port) later. Ports of 0 are skipped. It cannot
 * close the race with a process binding in between; LocalMesh also checks Envoy's listener itself.
 */
export async function checkPortsFree(ports: readonly PlannedPort[], host = '127.0.0.1'): Promise<void> {
  const seen = new Map<number, PlannedPort>();
  for (const p of ports) {
    if (p.port === 0) continue;
    const other = seen.get(p.port);
    if (other) throw new Error(`${other.flag} and ${p.flag} are both ${p.port}: give each component its own port`);
    seen.set(p.port, p);
    const problem = await tryBind(p.port, host);
    if (problem) throw new PortInUseError(p, host, problem);
  }
}
