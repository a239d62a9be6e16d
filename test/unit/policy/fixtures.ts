import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { IdentityInput, McpInput, PolicyInput } from '../../../src/contract/policy.js';

/** Shared by the policy tests: temporary policy directories and realistic inputs. */

export const REPO_POLICIES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'policies');

const made: string[] = [];

/** A fresh directory holding the given files (paths relative to it); removed by cleanupDirs(). */
export function policyDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-policy-test-'));
  made.push(dir);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

export function cleanupDirs(): void {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
}

export function person(team: string | null, groups: string[] = [], sub = 'alice'): IdentityInput {
  return {
    authenticated: true, sub, iss: 'http://127.0.0.1:5556', team, groups, roles: [], tenant: null, agent: 'claude-code', scopes: ['mcp:tools'],
    delegation: [], claims: { sub, team, email: `${sub}@example.com`, name: 'Alice Example' },
  };
}

export const anonymous: IdentityInput = {
  authenticated: false, sub: null, iss: null, team: null, groups: [], roles: [], tenant: null, agent: null, scopes: [], delegation: [], claims: {},
};

/** A PolicyInput shaped as authz builds it for one JSON-RPC message. */
export function mcpInput(method: string | null, identity: IdentityInput, extra: Partial<McpInput> = {}): PolicyInput {
  const params: Record<string, unknown> | null = extra.tool ? { name: extra.tool, arguments: extra.arguments ?? {} } : method ? {} : null;
  const body = method ? { jsonrpc: '2.0', id: 7, method, params } : null;
  const mcp: McpInput = {
    method, kind: method === null ? 'transport' : method.startsWith('notifications/') ? 'notification' : 'request',
    tool: null, arguments: null, resource: null, prompt: null, params, id: method ? 7 : null, session_id: 'sess-1',
    protocol_version: '2025-06-18', server: 'demo', namespace: 'default', annotations: null, batch: null, ...extra,
  };
  const headers = { 'content-type': 'application/json', 'mcp-session-id': 'sess-1' };
  return {
    version: 1,
    mcp,
    identity,
    budget: { budgets: [], estimated_tokens: 0 },
    request: { id: 'req-1', method: method === null ? 'GET' : 'POST', path: '/mcp', host: '127.0.0.1:10000', scheme: 'http', headers, time_ns: 1795000000000000000 },
    attributes: { request: { http: { method: method === null ? 'GET' : 'POST', path: '/mcp', host: '127.0.0.1:10000', headers, body: body ? JSON.stringify(body) : '' } } },
    parsed_body: body,
    parsed_path: ['mcp'],
    parsed_query: {},
    truncated_body: false,
  };
}

export function toolCall(tool: string, args: Record<string, unknown>, identity: IdentityInput): PolicyInput {
  return mcpInput('tools/call', identity, { tool, arguments: args });
}
