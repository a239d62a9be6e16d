import type { SearchHit } from './search.js';

/**
 * The two tools an optimizing gateway lists instead of every tool: `find_tool` returns the tools
 * that fit a task (with their input schemas, so the agent can call them), `call_tool` calls one by
 * its namespaced name. Definitions and result shapes live here so the gateway and the token report
 * of `tollgate tools eval` count exactly the same bytes.
 */

export const FIND_TOOL = {
  name: 'find_tool',
  description: 'Search the tools available to you. Describe the task in plain words; returns the best-matching tools with their input schemas. Call one with call_tool.',
  inputSchema: {
    type: 'object',
    properties: {
      description: { type: 'string', description: 'What you want to do, in natural language.' },
      keywords: { type: 'string', description: 'Optional exact words (tool or parameter names) to match.' },
      limit: { type: 'integer', minimum: 1, maximum: 20, description: 'How many tools to return (default 5).' },
    },
    required: ['description'],
  },
  annotations: { readOnlyHint: true },
} as const;

export const CALL_TOOL = {
  name: 'call_tool',
  description: 'Call a tool returned by find_tool, by its name, with arguments matching its input schema.',
  inputSchema: {
    type: 'object',
    properties: {
      name: { type: 'string', description: 'The tool name exactly as find_tool returned it.' },
      arguments: { type: 'object', description: 'Arguments for the tool.' },
    },
    required: ['name'],
  },
} as const;

/** What find_tool returns to the agent: one text block of JSON, best match first. */
export function findToolResult(hits: SearchHit[], nameOf: (h: SearchHit) => string): { content: { type: 'text'; text: string }[] } {
  const tools = hits.map((h) => ({ name: nameOf(h), description: h.tool.description, inputSchema: h.tool.inputSchema }));
  return { content: [{ type: 'text', text: JSON.stringify({ tools }) }] };
}
