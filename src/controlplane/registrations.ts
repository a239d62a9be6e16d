import { parse as parseYaml } from 'yaml';
import { parseSpiffeId } from '../pki/index.js';
import { parseHostPort } from '../util/net.js';

/**
 * The sidecars the control plane is willing to configure, keyed by workload identity: the facts a
 * sidecar's config is built from. They come from whoever deploys the workload (`tollgate up`
 * writes them locally; docs/xds.md says where they come from in a cluster), never from the
 * connecting Envoy. Pure parsing; the file is read and watched by SidecarXds.
 */

export interface SidecarRegistration {
  /** SPIFFE ID the sidecar's client certificate must carry. */
  identity: string;
  /** The node id this registration is served to (an identity may hold several: one per pod). */
  nodeId: string;
  /**
   * The client certificate must also name this node id as its subject CN, as the control plane's
   * workload certificates do (`<namespace>/<pod>`, from the pod-bound token): set for
   * registrations derived from pods, so a pod cannot take a sibling's node id.
   */
  podBound?: boolean;
  server: string;
  /** Must be the namespace of `identity`: a workload cannot be the sidecar of another namespace. */
  namespace: string;
  /** Where Envoy listens for MCP clients. */
  listen: { host: string; port: number };
  mcpPath: string;
  /** The MCP server Envoy forwards allowed calls to. */
  upstream: { host: string; port: number };
  /** authz for this sidecar; the defaults' authz when unset. */
  authz?: { host: string; port: number };
  /** When set, Envoy reaches authz over mTLS (its workload certificate) and checks authz's SAN is this. */
  authzIdentity?: string;
  /** RFC 9728 `resource`; `http://<server>.<namespace>.svc:<port><path>` when unset. */
  resourceUrl?: string;
}

export class RegistrationError extends Error {
  constructor(file: string, where: string, problem: string) {
    super(`${file}: ${where}: ${problem}`);
    this.name = 'RegistrationError';
  }
}

const FIELDS = ['identity', 'node_id', 'server', 'namespace', 'listen', 'mcp_path', 'upstream', 'authz', 'authz_identity', 'resource_url'];

function parseOne(file: string, where: string, raw: unknown): SidecarRegistration {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new RegistrationError(file, where, 'must be a mapping');
  const d = raw as Record<string, unknown>;
  for (const k of Object.keys(d)) if (!FIELDS.includes(k)) throw new RegistrationError(file, `${where}.${k}`, `unknown field (known: ${FIELDS.join(', ')})`);
  const text = (k: string, required: boolean): string | undefined => {
    const v = d[k];
    if (v === undefined && !required) return undefined;
    if (typeof v !== 'string' || v === '') throw new RegistrationError(file, `${where}.${k}`, required && v === undefined ? 'is required' : 'must be a non-empty string');
    return v;
  };
  const addr = (k: string, required: boolean): { host: string; port: number } | undefined => {
    const v = text(k, required);
    if (v === undefined) return undefined;
    try { return parseHostPort(v); } catch (e) { throw new RegistrationError(file, `${where}.${k}`, (e as Error).message); }
  };
  const spiffe = (k: string, required: boolean): string | undefined => {
    const v = text(k, required);
    if (v !== undefined && !parseSpiffeId(v)) throw new RegistrationError(file, `${where}.${k}`, `"${v}" is not a spiffe://<trust-domain>/ns/<ns>/sa/<sa> identity`);
    return v;
  };
  const identity = spiffe('identity', true) as string;
  const namespace = text('namespace', true) as string;
  if (parseSpiffeId(identity)?.namespace !== namespace) {
    throw new RegistrationError(file, `${where}.namespace`, `"${namespace}" is not the namespace of ${identity}`);
  }
  const mcpPath = text('mcp_path', false) ?? '/mcp';
  const reg: SidecarRegistration = {
    identity, namespace,
    nodeId: text('node_id', true) as string,
    server: text('server', true) as string,
    listen: addr('listen', true) as { host: string; port: number },
    mcpPath,
    upstream: addr('upstream', true) as { host: string; port: number },
  };
  const authz = addr('authz', false);
  if (authz) reg.authz = authz;
  const authzIdentity = spiffe('authz_identity', false);
  if (authzIdentity) reg.authzIdentity = authzIdentity;
  const resourceUrl = text('resource_url', false);
  if (resourceUrl) reg.resourceUrl = resourceUrl;
  return reg;
}

/** Parses a registrations file (`sidecars: [...]`); an identity or node id listed twice is an error. */
export function parseRegistrations(text: string, file: string): SidecarRegistration[] {
  let doc: unknown;
  try { doc = parseYaml(text); } catch (e) { throw new RegistrationError(file, '(file)', (e as Error).message); }
  if (doc == null) return [];
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new RegistrationError(file, '(top level)', 'must be a mapping with a "sidecars" list');
  const d = doc as Record<string, unknown>;
  for (const k of Object.keys(d)) if (k !== 'sidecars') throw new RegistrationError(file, k, 'unknown field (known: sidecars)');
  if (d.sidecars == null) return [];
  if (!Array.isArray(d.sidecars)) throw new RegistrationError(file, 'sidecars', 'must be a list');
  const out = d.sidecars.map((r, i) => parseOne(file, `sidecars[${i}]`, r));
  const ids = new Set<string>();
  const nodes = new Set<string>();
  out.forEach((r, i) => {
    if (ids.has(r.identity)) throw new RegistrationError(file, `sidecars[${i}].identity`, `${r.identity} is registered twice`);
    if (nodes.has(r.nodeId)) throw new RegistrationError(file, `sidecars[${i}].node_id`, `${r.nodeId} is registered twice`);
    ids.add(r.identity);
    nodes.add(r.nodeId);
  });
  return out;
}

/** The YAML `tollgate up` writes; parseRegistrations reads it back. */
export function formatRegistrations(regs: readonly SidecarRegistration[]): string {
  const hp = (a: { host: string; port: number }): string => (a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`);
  const lines = ['# Sidecars the control plane configures, by workload identity (docs/xds.md). Written by tollgate up.', 'sidecars:'];
  for (const r of regs) {
    lines.push(`  - identity: ${JSON.stringify(r.identity)}`, `    node_id: ${JSON.stringify(r.nodeId)}`, `    server: ${JSON.stringify(r.server)}`,
      `    namespace: ${JSON.stringify(r.namespace)}`, `    listen: ${JSON.stringify(hp(r.listen))}`, `    mcp_path: ${JSON.stringify(r.mcpPath)}`,
      `    upstream: ${JSON.stringify(hp(r.upstream))}`);
    if (r.authz) lines.push(`    authz: ${JSON.stringify(hp(r.authz))}`);
    if (r.authzIdentity) lines.push(`    authz_identity: ${JSON.stringify(r.authzIdentity)}`);
    if (r.resourceUrl) lines.push(`    resource_url: ${JSON.stringify(r.resourceUrl)}`);
  }
  return lines.join('\n') + '\n';
}
