import { createServer, connect } from 'node:net';

/** A TCP port free on 127.0.0.1 right now (the OS picks it). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') return reject(new Error('no port assigned'));
      srv.close(() => resolve(addr.port));
    });
  });
}

/** Resolves once something accepts TCP connections on host:port, rejects after timeoutMs. */
export async function waitForPort(port: number, host = '127.0.0.1', timeoutMs = 15000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ port, host });
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => { s.destroy(); resolve(false); });
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listening on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Splits "host:port" (IPv6 in brackets allowed). */
export function parseHostPort(s: string, defaultHost = '127.0.0.1'): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(s) ?? /^(\d+)$/.exec(s);
  if (!m) throw new Error(`expected host:port, got "${s}"`);
  if (m.length === 2) return { host: defaultHost, port: Number(m[1]) };
  const host = m[1] ?? m[2] ?? defaultHost;
  const port = Number(m[3]);
  if (!(port > 0 && port < 65536)) throw new Error(`port out of range in "${s}"`);
  return { host: host || defaultHost, port };
}
