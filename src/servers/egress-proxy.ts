import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { egressAllowed, type PermissionProfile } from './profile.js';

const MAX_HEAD = 16 * 1024;

export interface EgressDecision { host: string; port: number; allowed: boolean }

/**
 * The only way out of a server's container: an HTTP proxy (CONNECT and absolute-URI requests) on
 * a unix socket bind-mounted into it, opening exactly the hosts and ports the profile names. The
 * container itself has no network interface but loopback, so a server that ignores the proxy
 * reaches nothing. Request heads are read once, bounded, without regular expressions.
 */
export class EgressProxy {
  readonly decisions: EgressDecision[] = [];
  private constructor(private readonly srv: Server, readonly dir: string, readonly socketPath: string) {}

  static async start(dir: string, profile: PermissionProfile, log?: (msg: string, f: Record<string, unknown>) => void): Promise<EgressProxy> {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const socketPath = join(dir, 'egress.sock');
    rmSync(socketPath, { force: true });
    const holder: { proxy?: EgressProxy } = {};
    const srv = createServer((client) => holder.proxy!.handle(client, profile, log));
    await new Promise<void>((resolve, reject) => { srv.once('error', reject); srv.listen(socketPath, resolve); });
    // The container's user (65532) must be able to connect; nothing else is reachable through it.
    chmodSync(socketPath, 0o666);
    holder.proxy = new EgressProxy(srv, dir, socketPath);
    return holder.proxy;
  }

  private handle(client: Socket, profile: PermissionProfile, log?: (msg: string, f: Record<string, unknown>) => void): void {
    let head = Buffer.alloc(0);
    client.on('error', () => undefined);
    const refuse = (status: string, why: string): void => {
      client.end(`HTTP/1.1 ${status}\r\ncontent-type: text/plain\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(why)}\r\n\r\n${why}`);
    };
    const onData = (b: Buffer): void => {
      head = Buffer.concat([head, b]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > MAX_HEAD) { client.off('data', onData); refuse('431 Request Header Fields Too Large', 'request head too large'); }
        return;
      }
      client.off('data', onData);
      client.pause();
      const firstLine = head.subarray(0, head.indexOf('\r\n')).toString('latin1');
      const [method, target, version] = firstLine.split(' ');
      let host: string; let port: number; let forward: Buffer | null = null;
      try {
        if (method === 'CONNECT') {
          const u = new URL(`http://${target}`);
          host = u.hostname; port = Number(u.port || 443);
        } else {
          const u = new URL(target ?? '');
          if (u.protocol !== 'http:') throw new Error('only http:// URLs (https goes through CONNECT)');
          host = u.hostname; port = Number(u.port || 80);
          // Origin-form towards the server and `Connection: close`: one request per connection, so
          // a keep-alive client cannot send its next request (for another host) down this one.
          const headerEnd = head.indexOf('\r\n\r\n');
          const headers = head.subarray(head.indexOf('\r\n') + 2, headerEnd).toString('latin1').split('\r\n')
            .filter((h) => !/^(proxy-)?connection:/i.test(h) && !/^keep-alive:/i.test(h));
          forward = Buffer.concat([
            Buffer.from(`${method} ${u.pathname}${u.search} ${version}\r\n${[...headers, 'Connection: close'].join('\r\n')}\r\n\r\n`, 'latin1'),
            head.subarray(headerEnd + 4),
          ]);
        }
      } catch (e) { refuse('400 Bad Request', `not a proxy request: ${(e as Error).message}`); return; }
      const allowed = egressAllowed(profile, host, port);
      this.decisions.push({ host, port, allowed });
      log?.(allowed ? 'egress allowed' : 'egress refused', { host, port });
      if (!allowed) { refuse('403 Forbidden', `Tollgate: this server's permission profile does not allow ${host}:${port}`); return; }
      const up = connect({ host: host.replace(/^\[|\]$/g, ''), port });
      up.on('error', (e) => { if (!client.destroyed) refuse('502 Bad Gateway', `cannot reach ${host}:${port}: ${e.message}`); });
      up.once('connect', () => {
        if (forward) up.write(forward); else client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        if (!forward && head.length > head.indexOf('\r\n\r\n') + 4) up.write(head.subarray(head.indexOf('\r\n\r\n') + 4));
        client.pipe(up); up.pipe(client);
        client.resume();
      });
      client.on('close', () => up.destroy());
      up.on('close', () => client.destroy());
    };
    client.on('data', onData);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.srv.close(() => resolve()));
    rmSync(this.socketPath, { force: true });
  }
}

/**
 * Runs inside the container (node from the base image): listens on 127.0.0.1:3128 and relays
 * each connection to the egress socket, then runs the server with this process's stdio and
 * exits with its status. Written to the state directory and mounted read-only.
 */
export const EGRESS_RELAY_SCRIPT = `// Tollgate egress relay (generated; see src/servers/egress-proxy.ts)
import { createServer, connect } from 'node:net';
import { spawn } from 'node:child_process';
const relay = createServer((c) => {
  const u = connect('/run/tollgate-egress/egress.sock');
  c.on('error', () => u.destroy()); u.on('error', () => c.destroy());
  c.pipe(u); u.pipe(c);
});
relay.listen(3128, '127.0.0.1', () => {
  const [cmd, ...args] = process.argv.slice(2);
  const child = spawn(cmd, args, { stdio: 'inherit' });
  for (const s of ['SIGTERM', 'SIGINT']) process.on(s, () => child.kill(s));
  child.on('exit', (code, sig) => process.exit(code ?? (sig ? 128 : 1)));
});
`;
