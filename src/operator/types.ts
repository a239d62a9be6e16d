/**
 * The custom resources as the operator reads them. The API server has already checked each spec
 * against the CRD's schema (manifests/crds), so these types follow that schema; fields the
 * operator does not read travel through untouched.
 */

export const GROUP = 'tollgate.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
/** Added to every object the operator must clean up after before it goes away. */
export const FINALIZER = 'tollgate.dev/operator';
/** Field manager for server-side apply and status writes. */
export const FIELD_MANAGER = 'tollgate-operator';

export interface ObjectMeta {
  name: string;
  namespace: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  deletionTimestamp?: string;
  finalizers?: string[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface CustomResource<S, T> {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: S;
  status?: T;
}

export interface CommonStatus {
  observedGeneration?: number;
  conditions?: Condition[];
}

export interface EgressRule { cidr: string; ports?: number[] }

export interface SecretEnv { name: string; secretName: string; key: string }

export interface McpServerRun {
  /** Required without spec.source (the CRD's rules say so). */
  image?: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value: string }[];
  secretEnv?: SecretEnv[];
  /** Required without spec.source; with it, the bridge's port. */
  port?: number;
  replicas?: number;
  resources?: Record<string, unknown>;
  permissions?: {
    runAsUser?: number;
    filesystem?: { path: string; sizeLimit?: string }[];
    egress?: EgressRule[];
  };
}

export interface McpServerSpec {
  upstream?: { service: string; port: number; namespace?: string; path?: string };
  resource: string;
  audience?: string[];
  authorizationServers?: string[];
  scopesSupported?: string[];
  run?: McpServerRun;
  /** A stdio server from a package or image, run behind the bridge (docs/kubernetes.md). */
  source?: McpServerSource;
}

export interface McpServerSource { package: string; image?: string; args?: string[] }

/** A tool the server offers whose definition is not the approved one (issue 19). */
export interface PendingToolStatus {
  tool: string;
  status: 'new' | 'changed';
  sha256: string;
  approvedSha256?: string;
  /** Kinds of the description scanner's findings. */
  findings: string[];
  seenAt: string;
}

export type McpServerStatus = CommonStatus & { sidecars?: number; pendingTools?: PendingToolStatus[] };
export type McpServer = CustomResource<McpServerSpec, McpServerStatus>;

export interface McpPolicySpec {
  servers?: string[];
  entrypoint?: 'tollgate' | 'envoy';
  rego?: { sources: { name: string; content: string }[]; data?: string };
  bundle?: { url: string; pollInterval?: string; verificationKeySecretRef?: { name: string; key?: string } };
}

export type McpPolicyStatus = CommonStatus & { revision?: number; contentSha256?: string; pointerKey?: string; servers?: string[] };
export type McpPolicy = CustomResource<McpPolicySpec, McpPolicyStatus>;

export interface TokenBudgetSpec {
  scope: Partial<Record<'team' | 'agent' | 'sub' | 'server' | 'tool', string>>;
  limit: number;
  window: 'hour' | 'day' | 'month';
  timezone?: string;
  action?: 'deny' | 'warn';
}

export type TokenBudgetStatus = CommonStatus & { used?: number; remaining?: number; windowStart?: string; budgetName?: string };
export type TokenBudget = CustomResource<TokenBudgetSpec, TokenBudgetStatus>;

export interface VirtualMcpServerSpec {
  servers: { name: string; prefix?: boolean }[];
  mode?: 'aggregate' | 'optimizer';
  identity: { issuer: string; audience?: string[] };
  delegation: { clientId: string; clientSecretRef: { name: string; key?: string }; tokenEndpoint?: string };
  replicas?: number;
  port?: number;
}

export type VirtualMcpServerStatus = CommonStatus & { endpoint?: string; members?: { name: string; url: string }[] };
export type VirtualMcpServer = CustomResource<VirtualMcpServerSpec, VirtualMcpServerStatus>;

export type Kind = 'MCPServer' | 'MCPPolicy' | 'TokenBudget' | 'VirtualMCPServer';
export const PLURAL: Record<Kind, string> = { MCPServer: 'mcpservers', MCPPolicy: 'mcppolicies', TokenBudget: 'tokenbudgets', VirtualMCPServer: 'virtualmcpservers' };
