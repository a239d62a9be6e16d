import { spawn } from 'node:child_process';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { projectRoot } from '../../../src/util/tools.js';
import type { LaunchSpec } from '../../../src/bridge/types.js';

/** The stdio conformance fixture, run through tsx. */
export function fixtureLaunch(): LaunchSpec {
  return {
    command: process.execPath, args: ['--import', 'tsx', join(projectRoot(), 'test/fixtures/conformance-server.ts')],
    env: { PATH: process.env.PATH ?? '' }, cwd: projectRoot(), label: 'test/fixtures/conformance-server.ts',
  };
}

export interface ConformanceRun { code: number | null; passed: number; failed: number; output: string; failures: string[] }

/** Runs the official MCP conformance CLI's server scenarios against url (installed by `make conformance`). */
export async function runConformance(url: string, args: string[] = []): Promise<ConformanceRun> {
  const dir = process.env.TOLLGATE_CONFORMANCE ?? join(projectRoot(), '.tools', 'conformance-0.1.16');
  const cli = join(dir, 'node_modules/@modelcontextprotocol/conformance/dist/index.js');
  const child = spawn(process.execPath, ['--import', join(dir, 'register.mjs'), cli, 'server', '--url', url, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (b: Buffer) => { output += b.toString('utf8'); });
  child.stderr.on('data', (b: Buffer) => { output += b.toString('utf8'); });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  const total = /Total: (\d+) passed, (\d+) failed/.exec(output);
  const failures = [...output.matchAll(/^✗ (\S+):/gm)].map((m) => m[1]!);
  return { code, passed: Number(total?.[1] ?? 0), failed: Number(total?.[2] ?? -1), output, failures };
}

/**
 * A loopback reverse proxy that adds a bearer token to every request, for clients (such as the
 * conformance CLI) that cannot send one. The Host header passes through unchanged.
 */
export async function tokenInjector(target: { host: string; port: number }, token: () => string): Promise<{ url: (path: string) => string; close: () => Promise<void> }> {
  const srv: Server = createServer((req, res) => {
    const up = httpRequest({ host: target.host, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, authorization: `Bearer ${token()}` } }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', (e) => { if (!res.headersSent) res.writeHead(502); res.end(e.message); });
    req.pipe(up);
    res.on('close', () => up.destroy());
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as AddressInfo).port;
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    close: () => { srv.closeAllConnections(); return new Promise((resolve) => srv.close(() => resolve())); },
  };
}

/** Pinned versions of the real servers the tests run (installed into .tools/servers). */
export const VERSIONS = {
  everything: 'npx:@modelcontextprotocol/server-everything@2026.8.31',
  filesystem: 'npx:@modelcontextprotocol/server-filesystem@2026.8.31',
  time: 'uvx:mcp-server-time@2026.10.19',
  fetch: 'uvx:mcp-server-fetch@2026.10.24',
};
