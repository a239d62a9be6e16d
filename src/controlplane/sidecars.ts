import type { SidecarSpec } from '../envoy/resources.js';
import { sidecarResources } from '../envoy/resources.js';
import type { NodeInfo } from '../xds/protocol.js';
import { makeSnapshot, type SnapshotCache } from '../xds/cache.js';
import { parseHostPort } from '../util/net.js';

/** What the control plane knows that a sidecar's node metadata does not say. */
export interface SidecarDefaults {
  /** Where a sidecar reaches authz when its metadata names none (a shared authz Service). */
  authz: { host: string; port: number };
  authzTimeoutMs: number;
  maxRequestBytes: number;
  /** Token issuer announced in each server's RFC 9728 metadata. */
  issuer: string;
  extProc: boolean;
  /** Address the MCP listener binds: 0.0.0.0 in a pod, 127.0.0.1 on a workstation. */
  listenHost: string;
}

export class NodeMetadataError extends Error {
  constructor(nodeId: string, key: string, problem: string) {
    super(`sidecar ${nodeId}: node.metadata.${key} ${problem}`);
    this.name = 'NodeMetadataError';
  }
}

function str(node: NodeInfo, key: string): string | undefined {
  const v = node.metadata[key];
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

function port(node: NodeInfo, key: string, dflt?: number): number {
  const v = str(node, key);
  if (v === undefined) {
    if (dflt !== undefined) return dflt;
    throw new NodeMetadataError(node.id, key, 'is required');
  }
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new NodeMetadataError(node.id, key, `is not a port: "${v}"`);
  return n;
}

/**
 * Pure: the sidecar a connecting Envoy asks to be, from the metadata the injector (or
 * `tollgate up`) wrote into its bootstrap (keys listed in docs/kubernetes.md).
 */
export function specFromNode(node: NodeInfo, d: SidecarDefaults): SidecarSpec {
  const server = str(node, 'server');
  if (!server) throw new NodeMetadataError(node.id, 'server', 'is required');
  const namespace = str(node, 'namespace') ?? 'default';
  const mcpPort = port(node, 'mcp_port', 10000);
  const mcpPath = str(node, 'mcp_path') ?? '/mcp';
  const listenHost = str(node, 'mcp_host') ?? d.listenHost;
  const authzAddr = str(node, 'authz_address');
  const authz = authzAddr ? parseHostPort(authzAddr) : d.authz;
  const resource = str(node, 'resource_url') ?? `http://${server}.${namespace}.svc:${mcpPort}${mcpPath}`;
  return {
    nodeId: node.id, server, namespace,
    listen: { host: listenHost, port: mcpPort }, mcpPath,
    upstream: { host: str(node, 'upstream_host') ?? '127.0.0.1', port: port(node, 'upstream_port') },
    authz: { ...authz, timeoutMs: d.authzTimeoutMs },
    maxRequestBytes: d.maxRequestBytes,
    resourceMetadata: {
      resource, authorization_servers: [d.issuer], bearer_methods_supported: ['header'],
      resource_name: `MCP server "${server}" governed by Tollgate`,
    },
    extProc: d.extProc,
  };
}

/**
 * Keeps one snapshot per connected sidecar, built from its node metadata; a change of defaults
 * (say the ext_authz timeout) re-renders every known sidecar, which the ADS server then pushes.
 */
export class SidecarRegistry {
  private readonly nodes = new Map<string, NodeInfo>();
  readonly errors = new Map<string, string>();

  constructor(private readonly cache: SnapshotCache, private defaults: SidecarDefaults, private readonly onError?: (nodeId: string, message: string) => void) {}

  /** For AdsServer's onNode hook. */
  readonly onNode = (node: NodeInfo): void => {
    this.nodes.set(node.id, node);
    this.render(node);
  };

  get current(): SidecarDefaults { return this.defaults; }

  update(patch: Partial<SidecarDefaults>): void {
    this.defaults = { ...this.defaults, ...patch };
    for (const n of this.nodes.values()) this.render(n);
  }

  private render(node: NodeInfo): void {
    try {
      this.cache.setSnapshot(node.id, makeSnapshot(sidecarResources(specFromNode(node, this.defaults), 'ads')));
      this.errors.delete(node.id);
    } catch (e) {
      // No snapshot: that Envoy stays un-ready and serves nothing, rather than serving unguarded.
      const message = (e as Error).message;
      this.errors.set(node.id, message);
      this.onError?.(node.id, message);
    }
  }
}
