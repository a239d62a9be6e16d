import { bridgeCommand, DEFAULT_BRIDGE_PORT, serverImageName } from '../servers/image-contract.js';
import { parseSource, SourceError } from '../registry/source.js';
import type { McpServer, McpServerRun } from './types.js';

/**
 * spec.source as the pod runs it: the image the source names (derived, or spec.source.image), with
 * `tollgate bridge` as the container command so the stdio server behind it speaks Streamable
 * HTTP on loopback to Envoy. Everything else (replicas, resources, env, secretEnv, permissions)
 * comes from spec.run as for any server, so the profile and NetworkPolicy rendering is shared.
 */

/** What the pod runs once spec.run and spec.source are resolved: image and port always known. */
export interface ResolvedRun extends McpServerRun { image: string; port: number }

/** A spec the CRD's rules should have refused (an older CRD installed, say): surfaced in status. */
export class InvalidServerSpec extends Error {}

/**
 * Host names Envoy forwards with (clients keep their Host header): the Service's DNS names and the
 * resource URL's host. The bridge refuses any other (DNS-rebinding protection stays on).
 */
export function bridgeHosts(s: McpServer): string[] {
  const { name, namespace } = s.metadata;
  const hosts = [name, `${name}.${namespace}`, `${name}.${namespace}.svc`, `${name}.${namespace}.svc.cluster.local`];
  try {
    hosts.push(new URL(s.spec.resource).hostname.toLowerCase());
  } catch { /* the CRD's pattern only says https?://; a URL that does not parse adds no host */ }
  return [...new Set(hosts)];
}

export function sourceRun(s: McpServer, imagePrefix?: string): ResolvedRun {
  const src = s.spec.source!;
  let parsed;
  try {
    parsed = parseSource(src.package);
  } catch (e) {
    if (e instanceof SourceError) throw new InvalidServerSpec(`spec.source.package: ${e.message}`);
    throw e;
  }
  if (parsed.kind === 'registry') throw new InvalidServerSpec('spec.source.package: registry entry names are not run by the operator; give npx:, uvx: or image:');
  const run = s.spec.run ?? {};
  if (run.image || run.command) throw new InvalidServerSpec('with spec.source, set spec.source.image rather than spec.run.image or spec.run.command');
  const port = run.port ?? DEFAULT_BRIDGE_PORT;
  let image = src.image;
  try {
    image ??= serverImageName(parsed, imagePrefix);
  } catch (e) {
    if (e instanceof SourceError) throw new InvalidServerSpec(`spec.source.package: ${e.message}`);
    throw e;
  }
  return {
    ...run,
    image,
    port,
    command: bridgeCommand(s.metadata.name, port, bridgeHosts(s)),
    ...(src.args?.length ? { args: src.args } : {}),
  };
}
