/**
 * The policy input document: a public API, versioned. Fields are added, never renamed or removed,
 * within a version. See docs/policy-input.md.
 */
export const POLICY_INPUT_VERSION = 1;

export interface ToolAnnotations {
  readOnlyHint?: boolean;
  destructiveHint?: boolean;
  idempotentHint?: boolean;
  openWorldHint?: boolean;
  title?: string;
}

export interface McpInput {
  /** JSON-RPC method; null for transport requests (GET to open an SSE stream, DELETE to end a session). */
  method: string | null;
  kind: 'request' | 'notification' | 'response' | 'transport';
  tool: string | null;
  arguments: Record<string, unknown> | null;
  /** resources/read and resources/subscribe `uri`. */
  resource: string | null;
  /** prompts/get `name`. */
  prompt: string | null;
  params: Record<string, unknown> | null;
  id: string | number | null;
  session_id: string | null;
  protocol_version: string | null;
  server: string;
  namespace: string;
  /** Where the server Tollgate runs came from (`tollgate run` / `up --server`); null for servers it does not run. */
  provenance?: ServerProvenance | null;
  /** Tool annotations as the server declared them in tools/list (never from the client). */
  annotations: ToolAnnotations | null;
  /** Position in a JSON-RPC batch, or null for a single message. */
  batch: { index: number; size: number } | null;
  /**
   * true when the policy is asked whether a listed item (tools/list, prompts/list,
   * resources/list) should be visible, rather than judging a real call: argument constraints
   * should not apply. Absent on real calls.
   */
  listing?: boolean;
  /**
   * Tool pinning (docs/tool-pinning.md), for tools/call and listed tools when authz enforces pins:
   * the tool's pin status, hashes and scanner findings. Absent when pinning is off.
   */
  pin?: PinInput | null;
  /** Scanner findings on a listed prompt's or resource's description (listing only, pinning on). */
  findings?: Finding[];
  /**
   * The request's Mcp-Session-Id and who owns it (docs/policy-input.md); null without the header.
   * Absent only in inputs built outside Check (toolkit fixtures).
   */
  session?: McpSessionInput | null;
}

/** A session as authz knows it: `owner` null means unknown here (bound to this caller if allowed). */
export interface McpSessionInput {
  id: string;
  owner: { iss: string; sub: string; agent: string | null } | null;
  /** How the owner was learnt: from the initialize response, or from the first request using it. */
  bound_by: 'initialize' | 'first_request' | null;
}

/**
 * The origin of a server Tollgate runs, from its own configuration (never from a request):
 * which package or image, and whether a pinned registry key vouched for it.
 */
export interface ServerProvenance {
  /** e.g. "npx:@modelcontextprotocol/server-filesystem@2026.8.31". */
  source: string;
  /** Registry the entry came from (its index URL or path), or null when run from a package directly. */
  registry: string | null;
  /** Registry entry name (server.json `name`), or null. */
  entry: string | null;
  version: string | null;
  /** true only when the entry's signature and the index signature checked out against a pinned key. */
  verified: boolean;
}

/**
 * What a verified token says about the caller, as identity/ produces it and policy reads it in
 * `input.identity`: one declaration, so the two cannot drift apart.
 */
export interface CallerAttributes {
  team: string | null;
  groups: string[];
  /** Roles from the profile's role claims (Entra app roles, Keycloak realm and client roles); [] if none. */
  roles: string[];
  /** Tenant / organisation from the profile (Entra `tid`, Google Workspace `hd`); null if none. */
  tenant: string | null;
  /** The agent (OAuth client / workload) acting; from the configured claim, else the profile's client claims. */
  agent: string | null;
  scopes: string[];
  /** All claims, as the issuer signed them. */
  claims: Record<string, unknown>;
}

/** `input.identity`: the caller's attributes, and nulls for a caller without a (verified) token. */
export interface IdentityInput extends CallerAttributes {
  authenticated: boolean;
  sub: string | null;
  iss: string | null;
  delegation: Array<Record<string, unknown>>;
}

export interface BudgetInputEntry {
  name: string;
  scope: Record<string, string>;
  limit: number;
  used: number;
  remaining: number;
  window: string;
  resets_at: string;
  action: 'deny' | 'warn';
}

/** `input.version` in "envoy" mode, exactly as opa-envoy-plugin sets it. */
export interface PluginInputVersion { ext_authz: 'v3'; encoding: 'protojson' }

export interface PolicyInput {
  /** POLICY_INPUT_VERSION; opa-envoy-plugin's version object under `--entrypoint envoy`. */
  version: number | PluginInputVersion;
  mcp: McpInput;
  identity: IdentityInput;
  budget: { budgets: BudgetInputEntry[]; estimated_tokens: number };
  request: {
    id: string;
    method: string;
    path: string;
    host: string;
    scheme: string;
    headers: Record<string, string>;
    time_ns: number;
  };
  /** opa-envoy-plugin compatible shapes, so its policies run unmodified. */
  attributes: Record<string, unknown>;
  parsed_body: unknown;
  parsed_path: string[];
  parsed_query: Record<string, string[]>;
  truncated_body: boolean;
}

/** What a policy decides, normalised from `{allow, reasons, ...}` or a bare boolean. */
export interface Decision {
  allow: boolean;
  reasons: string[];
  /** Extra headers: added upstream on allow, to the client's response on deny. */
  headers: Record<string, string>;
  httpStatus: number | null;
  /** JSON pointers / dotted paths into input to redact in decision logs. */
  mask: string[];
  /** Policy's own cost hint in tokens, charged on top of counted tokens. */
  cost: number | null;
}

export interface PolicyEvaluator {
  /** Revision of the loaded bundle (recorded in every decision). */
  readonly revision: string;
  evaluate(input: PolicyInput): Decision;
  /** The raw `system.log.mask` result for an input (decision-log masking); absent: no mask rule. */
  evaluateMask?(input: PolicyInput): unknown;
}

/** A scanner finding on text an MCP server writes for the model (src/pins/scan.ts produces them). */
export type FindingKind =
  | 'invisible_unicode' | 'bidi_control' | 'base64_blob' | 'url' | 'secret_reference'
  | 'tool_reference' | 'instruction' | 'oversize';

export interface Finding {
  kind: FindingKind;
  /**
   * block: what clean descriptions do not contain (hidden characters, encoded blobs, orders to the
   * model, references to key files or to other tools); the default library refuses the tool.
   * note: worth a reviewer's look but common in honest descriptions (links, the word "password").
   */
  severity: 'block' | 'note';
  /** What was found, shortened and with hidden characters shown as U+XXXX. */
  detail: string;
  /** Offset (UTF-16 code units) of the first occurrence. */
  offset: number;
}

/** What authz knows about one tool's pin, as the policy sees it in input.mcp.pin (docs/policy-input.md). */
export interface PinInput {
  /** approved: the server's current definition is the pinned one; changed: it differs; new: no pin;
   *  unverified: pinned, but authz has not seen the server list the tool since it started. */
  status: 'approved' | 'changed' | 'new' | 'unverified';
  /** Hash of the definition the server last listed (null if not seen). */
  sha256: string | null;
  /** Hash of the approved definition (null if none). */
  approved_sha256: string | null;
  /** Scanner findings on the definition the server last listed. */
  findings: Finding[];
  /** The approver accepted the findings of the approved definition. */
  accepted_findings: boolean;
  /** Scanner findings on the instructions the server gave in its last initialize result. */
  server_findings: Finding[];
}
