import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { authorizationService } from '../src/envoy/protos.js';
import { parseHostPort } from '../src/util/net.js';

/**
 * The ceiling: an ext_authz v3 server on the same gRPC stack and service definition as Tollgate,
 * that allows everything without looking at the request. Whatever it costs is the floor no real
 * authz on @grpc/grpc-js can go under, so "tollgate / ceiling" isolates Tollgate's own work.
 *
 * Usage: node --import tsx bench/noop-authz.ts [--listen 127.0.0.1:0]
 * Prints "noop authz listening on HOST:PORT" once bound; stops on SIGINT/SIGTERM.
 */

// Allocated once: the reply carries nothing request-specific.
const ALLOW = Object.freeze({ status: { code: 0 }, okResponse: { headers: [], headersToRemove: [] } });

export async function startNoopAuthz(host: string, port: number): Promise<{ port: number; close(): Promise<void> }> {
  // Same server options as src/authz/server.ts, so the transport costs the same.
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 8 * 1024 * 1024, 'grpc.keepalive_permit_without_calls': 1 });
  server.addService(authorizationService(), {
    Check: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => callback(null, ALLOW),
  });
  const bound = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  return {
    port: bound,
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}

async function main(argv: string[]): Promise<void> {
  const i = argv.indexOf('--listen');
  const { host, port } = parseHostPort(i >= 0 && argv[i + 1] ? argv[i + 1]! : '127.0.0.1:0');
  const running = await startNoopAuthz(host, port);
  process.stdout.write(`noop authz listening on ${host}:${running.port}\n`);
  await new Promise<void>((resolve) => { process.once('SIGINT', resolve); process.once('SIGTERM', resolve); });
  await running.close();
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((e: Error) => { process.stderr.write(`noop-authz: ${e.message}\n`); process.exit(1); });
}
