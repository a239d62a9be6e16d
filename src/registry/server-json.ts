import type { ServerSource } from './source.js';
import { isObject } from '../util/object.js';

/**
 * The parts of the official MCP registry's server.json (schema 2025-09-29 and later) that
 * Tollgate uses. Other fields are kept as they are and shown by `registry show`.
 */
export interface ServerJson {
  name: string;
  version: string;
  description?: string;
  packages: RegistryPackage[];
  [k: string]: unknown;
}

export interface RegistryPackage {
  registryType: 'npm' | 'pypi' | 'oci';
  identifier: string;
  version?: string;
  transport: { type: string };
  packageArguments?: Array<{ type: 'positional' | 'named'; value?: string; name?: string; default?: string }>;
  environmentVariables?: Array<{ name: string; description?: string; isRequired?: boolean; isSecret?: boolean; default?: string }>;
}

/** Checks a parsed server.json; every problem is named with its JSON path. */
export function validateServerJson(v: unknown): ServerJson {
  const problems: string[] = [];
  if (!isObject(v)) throw new Error('server.json must be a JSON object');
  if (typeof v.name !== 'string' || !/^[A-Za-z0-9.-]+\/[A-Za-z0-9._-]+$/.test(v.name)) problems.push('name must be "namespace/name", e.g. "io.github.owner/server"');
  if (typeof v.version !== 'string' || !v.version) problems.push('version must be a non-empty string');
  if (!Array.isArray(v.packages) || v.packages.length === 0) problems.push('packages must list at least one package (remote-only servers are not run by Tollgate)');
  for (const [i, p] of (Array.isArray(v.packages) ? v.packages : []).entries()) {
    const at = `packages[${i}]`;
    if (!isObject(p)) { problems.push(`${at} must be an object`); continue; }
    if (!['npm', 'pypi', 'oci'].includes(p.registryType as string)) problems.push(`${at}.registryType must be npm, pypi or oci (got ${JSON.stringify(p.registryType)})`);
    if (typeof p.identifier !== 'string' || !p.identifier) problems.push(`${at}.identifier must be a non-empty string`);
    if (p.registryType !== 'oci' && (typeof p.version !== 'string' || !p.version)) problems.push(`${at}.version must pin the package version`);
    if (!isObject(p.transport) || typeof p.transport.type !== 'string') problems.push(`${at}.transport.type is required`);
    for (const [j, e] of (Array.isArray(p.environmentVariables) ? p.environmentVariables : []).entries()) {
      if (!isObject(e) || typeof e.name !== 'string') problems.push(`${at}.environmentVariables[${j}].name is required`);
    }
  }
  if (problems.length) throw new Error(`invalid server.json: ${problems.join('; ')}`);
  return v as ServerJson;
}

/** The first stdio package of an entry, as a source Tollgate can run, with its fixed arguments. */
export function runnableOf(entry: ServerJson): { source: ServerSource; args: string[]; pkg: RegistryPackage } {
  const pkg = entry.packages.find((p) => p.transport.type === 'stdio');
  if (!pkg) throw new Error(`registry entry ${entry.name} has no stdio package: Tollgate runs stdio servers (remote servers are governed as HTTP upstreams)`);
  const args: string[] = [];
  for (const a of pkg.packageArguments ?? []) {
    const value = a.value ?? a.default;
    if (a.type === 'named' && a.name) args.push(a.name, ...(value !== undefined ? [value] : []));
    else if (value !== undefined) args.push(value);
  }
  const source: ServerSource = pkg.registryType === 'npm' ? { kind: 'npx', pkg: pkg.identifier, version: pkg.version! }
    : pkg.registryType === 'pypi' ? { kind: 'uvx', pkg: pkg.identifier, version: pkg.version! }
      : { kind: 'image', ref: pkg.version ? `${pkg.identifier}:${pkg.version}` : pkg.identifier };
  return { source, args, pkg };
}
