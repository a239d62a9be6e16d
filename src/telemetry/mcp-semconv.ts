/**
 * The OpenTelemetry semantic conventions for MCP (gen-ai MCP conventions, status Development),
 * as they apply to a Tollgate decision: the server span's name and attributes. Pure, no SDK.
 */

/** Facts about one judged JSON-RPC message (or a refusal made before one was read). */
export interface McpOperationFacts {
  /** JSON-RPC method; null when no message was read (bad token, unparsable body). */
  method: string | null;
  tool: string | null;
  prompt: string | null;
  resourceUri: string | null;
  /** JSON-RPC id; null for notifications and when no message was read. */
  requestId: string | number | null;
  /** `Mcp-Session-Id` header. */
  sessionId: string | null;
  /** `MCP-Protocol-Version` header, else `params.protocolVersion` of an initialize. */
  protocolVersion: string | null;
  /** JSON-RPC error code Tollgate answered with; null when the call was let through. */
  errorCode: number | null;
  /** The error message the client got (span status description). */
  errorMessage: string | null;
}

export type SpanAttributes = Record<string, string | number>;

/** Span names and attribute values come from callers: long ones are cut, never trusted to be short. */
export const MAX_ATTRIBUTE_CHARS = 256;

export function bounded(v: string): string {
  return v.length <= MAX_ATTRIBUTE_CHARS ? v : v.slice(0, MAX_ATTRIBUTE_CHARS);
}

/** Span name when no MCP message was read, so no method is known. */
export const NO_MESSAGE_SPAN_NAME = 'tollgate.authz.check';

/**
 * `{mcp.method.name} {target}`, the target being the tool or prompt name; the method alone when
 * there is none (a resource URI is not used: high cardinality, as the conventions say).
 */
export function mcpSpanName(f: Pick<McpOperationFacts, 'method' | 'tool' | 'prompt'>): string {
  if (f.method === null) return NO_MESSAGE_SPAN_NAME;
  const target = f.method === 'tools/call' ? f.tool : f.method === 'prompts/get' ? f.prompt : null;
  return bounded(target ? `${f.method} ${target}` : f.method);
}

/** The conventions' attributes; absent facts are left out rather than set empty. */
export function mcpAttributes(f: McpOperationFacts): SpanAttributes {
  const a: SpanAttributes = { 'network.transport': 'tcp', 'network.protocol.name': 'http' };
  if (f.method !== null) a['mcp.method.name'] = bounded(f.method);
  if (f.method === 'tools/call') a['gen_ai.operation.name'] = 'execute_tool';
  if (f.tool !== null) a['gen_ai.tool.name'] = bounded(f.tool);
  if (f.prompt !== null) a['gen_ai.prompt.name'] = bounded(f.prompt);
  if (f.resourceUri !== null) a['mcp.resource.uri'] = bounded(f.resourceUri);
  // The conventions want the id's string form, and nothing for null or absent ids.
  if (f.requestId !== null) a['jsonrpc.request.id'] = bounded(String(f.requestId));
  if (f.sessionId) a['mcp.session.id'] = bounded(f.sessionId);
  if (f.protocolVersion) a['mcp.protocol.version'] = bounded(f.protocolVersion);
  if (f.errorCode !== null) {
    a['error.type'] = String(f.errorCode);
    a['rpc.response.status_code'] = String(f.errorCode);
  }
  return a;
}

/** The MCP protocol version of a request: the transport header, else what initialize proposes. */
export function protocolVersionOf(headers: Readonly<Record<string, string>>, method: string | null, params: Readonly<Record<string, unknown>> | null): string | null {
  const h = headers['mcp-protocol-version'];
  if (h) return h;
  const p = method === 'initialize' ? params?.protocolVersion : undefined;
  return typeof p === 'string' ? p : null;
}
