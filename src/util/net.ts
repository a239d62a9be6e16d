import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';

/**
 * The kernel's ephemeral range (source ports of outgoing connections). A port picked inside it can
 * be taken by any outgoing connection between the pick and the bind (a NATS client, Envoy's
 * upstream pool), which made components fail with EADDRINUSE on busy machines; ports are picked
 * below it instead.
 */
function ephemeralRange(): { low: number; high: number } {
  try {
    const [low = 0, high = 0] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low > 0 && high >= low) return { low, high };
  } catch { /* not Linux: fall through */ }
  return { low: 32768, high: 60999 };
}

const PICK_LOW = 10000;

function tryListen(port: number, host: string): Promise<number | null> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(null));
    srv.listen(port, host, () => {
      const addr = srv.address();
      const got = addr === null || typeof addr === 'string' ? null : addr.port;
      srv.close(() => resolve(got));
    });
  });
}

/**
 * A TCP port free on host right now: a random one between 10000 and the ephemeral range when
 * there is room (see ephemeralRange), else one the OS picks.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const { low } = ephemeralRange();
  if (low - PICK_LOW >= 1000) {
    for (let i = 0; i < 50; i++) {
      const port = await tryListen(PICK_LOW + randomInt(low - PICK_LOW), host);
      if (port !== null) return port;
    }
  }
  const port = await tryListen(0, host);
  if (port === null) throw new Error(`no free TCP port on ${host}`);
  return port;
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
