import type { ToolAnnotations } from '../contract/policy.js';

/**
 * Tool annotations as each MCP server declared them in its tools/list results, so Check can give
 * them to the policy at tools/call time (input.mcp.annotations). Filled only from server
 * responses (ext_proc), never from anything a client sends. Bounded: a server cannot make authz
 * hold unbounded memory by listing endless tools.
 */
export class ToolAnnotationStore {
  private readonly servers = new Map<string, Map<string, ToolAnnotations>>();

  constructor(private readonly maxServers = 1000, private readonly maxToolsPerServer = 10_000) {}

  /**
   * Records the annotations of the tools in one tools/list page (`result.tools`). Tools without
   * annotations are recorded as having none, replacing what an earlier listing said.
   * Returns how many tools were recorded.
   */
  record(server: string, tools: readonly unknown[]): number {
    let byTool = this.servers.get(server);
    if (!byTool) {
      if (this.servers.size >= this.maxServers) {
        const oldest = this.servers.keys().next();
        if (!oldest.done) this.servers.delete(oldest.value);
      }
      byTool = new Map();
      this.servers.set(server, byTool);
    }
    let n = 0;
    for (const t of tools) {
      if (typeof t !== 'object' || t === null || Array.isArray(t)) continue;
      const name = (t as Record<string, unknown>).name;
      if (typeof name !== 'string' || name === '') continue;
      if (!byTool.has(name) && byTool.size >= this.maxToolsPerServer) continue;
      byTool.set(name, sanitize((t as Record<string, unknown>).annotations));
      n++;
    }
    return n;
  }

  get(server: string, tool: string): ToolAnnotations | null {
    const a = this.servers.get(server)?.get(tool);
    return a && Object.keys(a).length > 0 ? a : null;
  }

  /** get() as a free function, the shape CheckDeps.annotations takes. */
  readonly lookup = (server: string, tool: string): ToolAnnotations | null => this.get(server, tool);

  get size(): number {
    let n = 0;
    for (const m of this.servers.values()) n += m.size;
    return n;
  }
}

/** Keeps only the hint fields of the MCP spec, with the types it gives them. */
export function sanitize(v: unknown): ToolAnnotations {
  const out: ToolAnnotations = {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return out;
  const a = v as Record<string, unknown>;
  for (const k of ['readOnlyHint', 'destructiveHint', 'idempotentHint', 'openWorldHint'] as const) {
    if (typeof a[k] === 'boolean') out[k] = a[k] as boolean;
  }
  if (typeof a.title === 'string') out.title = a.title.slice(0, 256);
  return out;
}
