import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import * as grpc from '@grpc/grpc-js';
import { authorizationService, externalProcessorService } from '../../../src/envoy/protos.js';
import { freePort } from '../../../src/util/net.js';

/** Test doubles for the two things an MCP sidecar talks to: the MCP server and Tollgate authz. */

export interface SeenRequest { method: string; url: string; headers: IncomingHttpHeaders; body: string }

export interface Upstream {
  port: number;
  requests: SeenRequest[];
  close(): Promise<void>;
}

/** A stand-in MCP server: POST echoes the JSON-RPC id, GET opens an SSE stream of three events. */
export async function startUpstream(): Promise<Upstream> {
  const requests: SeenRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      if (req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'text/event-stream', server: 'test-mcp' });
        let n = 0;
        const tick = (): void => {
          n++;
          res.write(`event: message\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{"n":${n}}}\n\n`);
          if (n < 3) setTimeout(tick, 20);
          else res.end();
        };
        tick();
        return;
      }
      let id: unknown = null;
      try { id = (JSON.parse(body) as { id?: unknown }).id ?? null; } catch { /* not JSON */ }
      const out = JSON.stringify({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: 'hello from upstream' }] } });
      res.writeHead(200, { 'content-type': 'application/json', server: 'test-mcp', 'x-upstream': 'yes' });
      res.end(out);
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port,
    requests,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/** The parts of CheckRequest the fake authz reads (loader options of src/envoy/protos.ts). */
interface CheckRequestMsg {
  attributes: {
    request: { http: { method: string; path: string; headers: Record<string, string>; rawBody: Buffer; body: string } };
    contextExtensions: Record<string, string>;
  };
}

export interface SeenCheck { method: string; path: string; headers: Record<string, string>; rawBody: string; contextExtensions: Record<string, string> }

export interface SeenExtProc { decisionId: string | null; contentType: string | null; body: string; chunks: number; ended: boolean }

export interface FakeAuthz {
  port: number;
  checks: SeenCheck[];
  processed: SeenExtProc[];
  stop(): Promise<void>;
  /** Starts again on the same port. */
  restart(): Promise<void>;
}

interface HeaderValueMsg { key: string; value?: string; rawValue?: Buffer | null }
interface HeadersMsg { headers?: { headers?: HeaderValueMsg[] } | null; endOfStream?: boolean }
interface ProcessingRequestMsg { requestHeaders?: HeadersMsg | null; responseHeaders?: HeadersMsg | null; responseBody?: { body?: Buffer | null; endOfStream?: boolean } | null }

function header(h: HeadersMsg | null | undefined, name: string): string | null {
  for (const hv of h?.headers?.headers ?? []) {
    if (hv.key.toLowerCase() === name) return hv.rawValue && hv.rawValue.length > 0 ? hv.rawValue.toString('utf8') : hv.value ?? '';
  }
  return null;
}

export const DENY_HEADER = 'x-test-deny';
export const DECISION_ID = 'x-tollgate-decision-id';

/**
 * Allows unless the request carries `x-test-deny`; allowed requests get a decision id header and
 * lose their Authorization header; denials answer 429 with a JSON-RPC error body of authz's own.
 * The ext_proc side records what it saw of each response and passes it through untouched.
 */
export async function startFakeAuthz(port?: number): Promise<FakeAuthz> {
  const checks: SeenCheck[] = [];
  const processed: SeenExtProc[] = [];
  const p = port ?? (await freePort());
  let n = 0;
  const make = async (): Promise<grpc.Server> => {
    const server = new grpc.Server();
    server.addService(authorizationService(), {
      Check: (call: grpc.ServerUnaryCall<CheckRequestMsg, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        const http = call.request.attributes.request.http;
        checks.push({
          method: http.method, path: http.path, headers: http.headers,
          rawBody: Buffer.from(http.rawBody ?? []).toString('utf8'), contextExtensions: call.request.attributes.contextExtensions,
        });
        if (http.headers[DENY_HEADER] !== undefined) {
          cb(null, {
            status: { code: grpc.status.PERMISSION_DENIED },
            deniedResponse: {
              status: { code: 'TooManyRequests' },
              headers: [{ header: { key: 'content-type', value: 'application/json' } }, { header: { key: 'x-deny-reason', value: 'test says no' } }],
              body: JSON.stringify({ jsonrpc: '2.0', id: 1, error: { code: -32001, message: 'denied by test' } }),
            },
          });
          return;
        }
        cb(null, {
          status: { code: grpc.status.OK },
          okResponse: {
            headers: [{ header: { key: DECISION_ID, value: `d-${++n}` }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
            headersToRemove: ['authorization'],
          },
        });
      },
    });
    server.addService(externalProcessorService(), {
      Process: (stream: grpc.ServerDuplexStream<ProcessingRequestMsg, unknown>) => {
        const seen: SeenExtProc = { decisionId: null, contentType: null, body: '', chunks: 0, ended: false };
        processed.push(seen);
        stream.on('data', (req: ProcessingRequestMsg) => {
          if (req.requestHeaders) {
            seen.decisionId = header(req.requestHeaders, DECISION_ID);
            stream.write({ requestHeaders: { response: {} } });
          } else if (req.responseHeaders) {
            seen.contentType = header(req.responseHeaders, 'content-type');
            if (req.responseHeaders.endOfStream) seen.ended = true;
            stream.write({ responseHeaders: { response: {} } });
          } else if (req.responseBody) {
            seen.chunks++;
            seen.body += Buffer.from(req.responseBody.body ?? []).toString('utf8');
            if (req.responseBody.endOfStream) seen.ended = true;
            stream.write({ responseBody: { response: {} } });
          }
        });
        stream.on('end', () => stream.end());
      },
    });
    await new Promise<number>((resolve, reject) => server.bindAsync(`127.0.0.1:${p}`, grpc.ServerCredentials.createInsecure(), (e, bound) => (e ? reject(e) : resolve(bound))));
    return server;
  };
  let server: grpc.Server | undefined = await make();
  return {
    port: p,
    checks,
    processed,
    async stop() {
      const s = server;
      server = undefined;
      if (s) s.forceShutdown();
    },
    async restart() {
      if (!server) server = await make();
    },
  };
}

/** Polls `probe` until it returns a value other than undefined/false, or throws after the deadline. */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface HttpResult { status: number; headers: Headers; body: string }

export async function http(url: string, init: RequestInit = {}): Promise<HttpResult> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(15_000) });
  return { status: res.status, headers: res.headers, body: await res.text() };
}
