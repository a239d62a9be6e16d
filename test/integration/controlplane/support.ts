import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PolicyInput } from '../../../src/contract/policy.js';

/** A policy that allows the tools listed in data.json, and says so in its reasons. */
export function writePolicy(dir: string, allowedTools: string[]): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'authz.rego'), [
    'package tollgate.authz',
    '',
    'default allow := false',
    '',
    'allow if input.mcp.tool in data.allowed_tools',
    '',
    'decision := {"allow": allow, "reasons": [sprintf("tool %s checked against %d allowed tools", [input.mcp.tool, count(data.allowed_tools)])]}',
    '',
  ].join('\n'));
  writeFileSync(join(dir, 'data.json'), JSON.stringify({ allowed_tools: allowedTools }));
}

/** A tools/call input for `tool`, shaped as authz builds it. */
export function toolInput(tool: string): PolicyInput {
  const params = { name: tool, arguments: {} };
  return {
    version: 1,
    mcp: {
      method: 'tools/call', kind: 'request', tool, arguments: {}, resource: null, prompt: null, params,
      id: 1, session_id: null, protocol_version: '2025-06-18', server: 'demo', namespace: 'default', annotations: null, batch: null,
    },
    identity: { authenticated: true, sub: 'alice', iss: 'http://issuer', team: 'a', groups: [], roles: [], tenant: null, agent: null, scopes: [], delegation: [], claims: {} },
    budget: { budgets: [], estimated_tokens: 0 },
    request: { id: 'r1', method: 'POST', path: '/mcp', host: 'h', scheme: 'http', headers: {}, time_ns: 1 },
    attributes: {},
    parsed_body: { jsonrpc: '2.0', id: 1, method: 'tools/call', params },
    parsed_path: ['mcp'],
    parsed_query: {},
    truncated_body: false,
  };
}

/** Waits (generously: shared CI cores) until `cond` holds; fails naming `what` and the last state. */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, state: () => unknown = () => '', timeoutMs = 20000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; state: ${JSON.stringify(state())}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
