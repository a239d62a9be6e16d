/** How to start one stdio MCP server process: a local command, or `podman run -i …` for a container. */
export interface LaunchSpec {
  command: string;
  args: string[];
  /** The full environment of the child (nothing is inherited unless put here). */
  env: Record<string, string>;
  cwd?: string;
  /** Shown in logs and error messages, e.g. "npx:@modelcontextprotocol/server-everything@2026.8.31". */
  label: string;
}

/**
 * JSON-RPC error codes the bridge answers with. -32006 is Tollgate's "unavailable" code
 * (src/authz/codes.ts), so a client sees one code whether authz or the server is down.
 */
export const BridgeErrorCode = {
  Unavailable: -32006,
  InvalidRequest: -32600,
  /** The answer that ends a cancelled request's stream (LSP's RequestCancelled; the client ignores it). */
  RequestCancelled: -32800,
} as const;
