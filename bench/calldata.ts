import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { DevIssuer } from '../src/identity/issuer.js';

/**
 * The workload: MCP `tools/call` requests as Envoy's ext_authz filter hands them to authz
 * (CheckRequest with the JSON-RPC body packed as bytes, the caller's bearer JWT, the route's
 * context extensions). A handful of callers and tools, so token and decision caches see what they
 * would in production: many calls per token, a few tokens, a mix of allowed and denied calls.
 */

export interface Caller {
  sub: string;
  team: string;
  agent: string;
  groups: string[];
}

/** Who calls. The expected decisions below follow from the example policy's per-team allow lists. */
export const CALLERS: readonly Caller[] = [
  { sub: 'alice', team: 'payments', agent: 'claude-code', groups: [] },
  { sub: 'bob', team: 'payments', agent: 'cursor', groups: [] },
  { sub: 'dora', team: 'payments', agent: 'claude-code', groups: ['dba'] },
  { sub: 'sam', team: 'support', agent: 'support-bot', groups: [] },
  { sub: 'sue', team: 'support', agent: 'support-bot', groups: ['leads'] },
];

export interface ToolCall {
  tool: string;
  arguments: Record<string, unknown>;
}

/** Realistic argument sizes: a short query, an id, a ticket with a paragraph of text, SQL. */
export const TOOL_CALLS: readonly ToolCall[] = [
  { tool: 'search_docs', arguments: { query: 'refund window for enterprise plans paid by card' } },
  { tool: 'get_customer', arguments: { customer_id: 'cus_1001' } },
  {
    tool: 'create_ticket',
    arguments: {
      title: 'Customer cannot download March invoice',
      body: 'Ada Lovelace (cus_1001) reports that the invoice PDF for March returns a 404 from the billing portal. '
        + 'She needs it for an audit due Friday. Steps: open Billing > Invoices, click March 2026, download. '
        + 'Expected a PDF, got "not found". Browser: Firefox 131. Please escalate if not fixed within a day.',
      priority: 'high',
    },
  },
  { tool: 'run_sql', arguments: { query: "SELECT status, count(*) FROM invoices WHERE created_at > now() - interval '7 days' GROUP BY status" } },
  { tool: 'delete_records', arguments: { table: 'sessions', where: 'expired_at < now()' } },
];

/**
 * What the example policy decides (mirrored in bench/policies/envoy/authz.rego): payments may use
 * every tool but needs the dba group for destructive ones; support may search, look up customers
 * and open tickets. The harness checks both engines against this before timing anything.
 */
export function expectedAllow(c: Caller, t: ToolCall): boolean {
  if (c.team === 'payments') return t.tool !== 'delete_records' || c.groups.includes('dba');
  if (c.team === 'support') return ['search_docs', 'get_customer', 'create_ticket'].includes(t.tool);
  return false;
}

export interface BenchCall {
  label: string;
  allow: boolean;
  /** CheckRequest in proto3 JSON (lowerCamelCase, bytes as base64): what ghz reads. */
  json: Record<string, unknown>;
  /** The same CheckRequest as @grpc/proto-loader objects (bytes as Buffer): what a grpc-js client sends. */
  message: Record<string, unknown>;
}

export interface WorkloadOptions {
  issuer: DevIssuer;
  audience: string;
  server: string;
  namespace: string;
  /** Host:port the MCP client called (Envoy's listener), for :authority. */
  authority: string;
}

function checkRequest(o: WorkloadOptions, token: string, sessionId: string, body: Buffer, n: number, rawBody: string | Buffer): Record<string, unknown> {
  const requestId = randomUUID();
  const now = Date.now();
  return {
    attributes: {
      source: { address: { socketAddress: { address: '127.0.0.1', portValue: 40000 + (n % 20000) } } },
      destination: { address: { socketAddress: { address: '127.0.0.1', portValue: Number(o.authority.split(':')[1] ?? 10000) } } },
      request: {
        time: typeof rawBody === 'string' ? new Date(now).toISOString() : { seconds: String(Math.floor(now / 1000)), nanos: (now % 1000) * 1e6 },
        http: {
          id: String(1_000_000 + n),
          method: 'POST',
          headers: {
            ':authority': o.authority,
            ':method': 'POST',
            ':path': '/mcp',
            ':scheme': 'http',
            accept: 'application/json, text/event-stream',
            authorization: `Bearer ${token}`,
            'content-type': 'application/json',
            'content-length': String(body.length),
            'mcp-protocol-version': '2025-06-18',
            'mcp-session-id': sessionId,
            'user-agent': 'node',
            'x-forwarded-proto': 'http',
            'x-request-id': requestId,
          },
          path: '/mcp',
          host: o.authority,
          scheme: 'http',
          size: String(body.length),
          protocol: 'HTTP/1.1',
          rawBody,
        },
      },
      contextExtensions: { server: o.server, namespace: o.namespace },
    },
  };
}

/**
 * Every caller × tool pair, interleaved so consecutive requests differ in caller and tool (ghz
 * sends the array round-robin). Tokens live an hour: longer than any run, so none expires mid-load.
 */
export async function buildWorkload(o: WorkloadOptions): Promise<BenchCall[]> {
  const tokens = new Map<string, string>();
  const sessions = new Map<string, string>();
  for (const c of CALLERS) {
    tokens.set(c.sub, await o.issuer.mint({ sub: c.sub, team: c.team, agent: c.agent, groups: c.groups, audience: o.audience, ttlSec: 3600 }));
    sessions.set(c.sub, randomUUID());
  }
  const calls: BenchCall[] = [];
  let n = 0;
  for (let round = 0; round < TOOL_CALLS.length; round++) {
    for (let ci = 0; ci < CALLERS.length; ci++) {
      const c = CALLERS[ci]!;
      const t = TOOL_CALLS[(ci + round) % TOOL_CALLS.length]!;
      n++;
      const body = Buffer.from(JSON.stringify({
        jsonrpc: '2.0', id: n, method: 'tools/call',
        params: { name: t.tool, arguments: t.arguments, _meta: { progressToken: n } },
      }));
      const token = tokens.get(c.sub)!;
      const session = sessions.get(c.sub)!;
      calls.push({
        label: `${c.sub}/${t.tool}`,
        allow: expectedAllow(c, t),
        json: checkRequest(o, token, session, body, n, body.toString('base64')),
        message: checkRequest(o, token, session, body, n, body),
      });
    }
  }
  return calls;
}

/** The ghz call-data file: a JSON array, sent round-robin, one element per request. */
export function writeGhzData(path: string, calls: readonly BenchCall[]): void {
  writeFileSync(path, JSON.stringify(calls.map((c) => c.json)));
}
