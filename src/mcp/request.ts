import type { JsonRpcMessage } from './jsonrpc.js';

/** The MCP-level facts about one message that policy and logs care about. */
export interface McpCallFacts {
  tool: string | null;
  arguments: Record<string, unknown> | null;
  resource: string | null;
  prompt: string | null;
  /** A reason the params are unusable for this method (e.g. tools/call without a name). */
  invalid: string | null;
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

export function callFacts(m: JsonRpcMessage): McpCallFacts {
  const p = m.params;
  const facts: McpCallFacts = { tool: null, arguments: null, resource: null, prompt: null, invalid: null };
  switch (m.method) {
    case 'tools/call': {
      facts.tool = str(p?.name);
      if (!facts.tool) facts.invalid = 'tools/call needs params.name (the tool to call)';
      const args = p?.arguments;
      if (args !== undefined && (typeof args !== 'object' || args === null || Array.isArray(args))) {
        facts.invalid = 'tools/call params.arguments must be an object';
      } else if (args) facts.arguments = args as Record<string, unknown>;
      break;
    }
    case 'resources/read':
    case 'resources/subscribe':
    case 'resources/unsubscribe':
      facts.resource = str(p?.uri);
      if (!facts.resource) facts.invalid = `${m.method} needs params.uri`;
      break;
    case 'prompts/get':
      facts.prompt = str(p?.name);
      if (!facts.prompt) facts.invalid = 'prompts/get needs params.name';
      if (p?.arguments && typeof p.arguments === 'object' && !Array.isArray(p.arguments)) facts.arguments = p.arguments as Record<string, unknown>;
      break;
  }
  return facts;
}
