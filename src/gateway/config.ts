import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { SEARCH_MODES } from '../discovery/search.js';
import { LOOPBACK_HOSTNAMES } from '../bridge/host-check.js';
import { SERVER_NAME } from './names.js';

/** `tollgate gateway` configuration: one schema, documented field by field in docs/gateway.md. */

const Server = z.object({
  name: z.string().regex(SERVER_NAME, 'must be a DNS label: lowercase letters, digits and "-" (it prefixes tool names)'),
  url: z.string().url('must be the governed server\'s MCP URL (its sidecar), e.g. http://127.0.0.1:10000/mcp'),
  audience: z.string().min(1).optional(),
  /** false: its tools and prompts keep their own names (on a name clash the earlier server wins). */
  prefix: z.boolean().default(true),
}).strict();

const Schema = z.object({
  listen: z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'must be HOST:PORT').default('127.0.0.1:10100'),
  path: z.string().startsWith('/').default('/mcp'),
  public_url: z.string().url().optional(),
  /**
   * Host names (no port) the Host and Origin headers may carry: DNS-rebinding protection. Default:
   * public_url's host name, plus localhost, 127.0.0.1 and [::1] when listening on loopback.
   */
  allowed_hosts: z.array(z.string().min(1).max(253).regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)$/, 'must be a host name without port, e.g. mcp.example.com or [::1]')).min(1).optional(),
  mode: z.enum(['aggregate', 'optimizer']).default('aggregate'),
  identity: z.object({
    issuer: z.string().url(),
    audience: z.array(z.string().min(1)).min(1).optional(),
    algorithms: z.array(z.string()).default(['RS256', 'ES256', 'EdDSA', 'PS256']),
  }).strict(),
  delegation: z.object({
    token_endpoint: z.string().url().optional(),
    client_id: z.string().min(1),
    client_secret_file: z.string().min(1),
  }).strict(),
  servers: z.array(Server).min(1, 'list at least one server'),
  optimizer: z.object({
    search: z.enum(SEARCH_MODES as unknown as ['hybrid', 'bm25', 'embedding']).default('hybrid'),
    default_k: z.number().int().min(1).max(20).default(5),
  }).strict().default({ search: 'hybrid', default_k: 5 }),
  upstream_timeout_ms: z.number().int().min(100).max(600_000).default(60_000),
  /** How long a session's merged tool list is reused before the servers are asked again. */
  list_cache_ms: z.number().int().min(0).max(3_600_000).default(30_000),
}).strict();

export type GatewayConfig = z.infer<typeof Schema> & { clientSecret: string; publicUrl: string; allowedHostnames: string[] };

function host(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  return { host: listen.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(listen.slice(i + 1)) };
}

export function listenAddress(c: GatewayConfig): { host: string; port: number } { return host(c.listen); }

/** Checks a config object against the schema without reading any file (configs others render). */
export function validateGatewayConfig(data: unknown, source = 'gateway config'): z.infer<typeof Schema> {
  const r = Schema.safeParse(data);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new Error(`${source}: ${i.path.length ? i.path.map(String).join('.') + ': ' : ''}${i.message}`);
  }
  const c = r.data;
  const names = new Set<string>();
  for (const s of c.servers) {
    if (names.has(s.name)) throw new Error(`${source}: servers: "${s.name}" appears twice`);
    names.add(s.name);
  }
  return c;
}

/** Parses a config object; relative file paths are resolved against `baseDir`. */
export function parseGatewayConfig(data: unknown, baseDir: string, source = 'gateway config'): GatewayConfig {
  const c = validateGatewayConfig(data, source);
  const secretFile = resolve(baseDir, c.delegation.client_secret_file);
  let clientSecret: string;
  try {
    clientSecret = readFileSync(secretFile, 'utf8').trim();
  } catch (e) {
    throw new Error(`${source}: delegation.client_secret_file: cannot read ${secretFile}: ${(e as Error).message}`);
  }
  if (!clientSecret) throw new Error(`${source}: delegation.client_secret_file: ${secretFile} is empty`);
  const { host: h, port } = host(c.listen);
  const publicUrl = c.public_url ?? `http://${h.includes(':') ? `[${h}]` : h}:${port}${c.path}`;
  const publicHost = new URL(publicUrl).hostname.toLowerCase();
  const loopback = (name: string): boolean => LOOPBACK_HOSTNAMES.includes(name) || name.startsWith('127.');
  const hostH = h.includes(':') ? `[${h}]` : h.toLowerCase();
  const allowedHostnames = c.allowed_hosts?.map((x) => x.toLowerCase())
    ?? [...new Set([publicHost, ...(loopback(hostH) || loopback(publicHost) ? LOOPBACK_HOSTNAMES : [])])];
  return { ...c, clientSecret, publicUrl, allowedHostnames };
}

/** Reads a YAML config; `overrides` (command-line flags) replace its top-level fields before checking. */
export function loadGatewayConfig(path: string, overrides: { listen?: string; mode?: string } = {}): GatewayConfig {
  let text: string;
  try { text = readFileSync(path, 'utf8'); } catch (e) { throw new Error(`cannot read gateway config ${path}: ${(e as Error).message}`); }
  let data: unknown;
  try { data = parseYaml(text); } catch (e) { throw new Error(`${path}: not YAML: ${(e as Error).message}`); }
  if (data && typeof data === 'object' && !Array.isArray(data)) data = { ...data, ...overrides };
  return parseGatewayConfig(data, dirname(resolve(path)), path);
}
