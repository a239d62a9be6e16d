import { imageRefProblem, sourceProblem, SourceError, type ServerSource } from './source.js';
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

/**
 * The official registry's server.json conventions for the two fields that name an entry (and its
 * file in the registry directory): `name` is "namespace/name", reverse-DNS namespace, each part
 * starting with a letter or digit, at most 200 characters; `version` one exact release, at most 255 characters, typically semver ("1.2.3",
 * "2.0.0-rc.1+build.5"). Tollgate takes versions that start with a letter or digit and go on with
 * letters, digits and . + ! _ - only: no path separators, whitespace or control characters, no
 * ranges ("^1.2", ">=1", "1.*"). Anchored, no nested quantifiers: linear on any input.
 */
const ENTRY_NAME = /^[A-Za-z0-9][A-Za-z0-9.-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/;
const ENTRY_VERSION = /^[A-Za-z0-9][A-Za-z0-9.+!_-]*$/;

/** Why NAME is not a registry entry name, or null when it is one. */
export function entryNameProblem(name: unknown): string | null {
  if (typeof name !== 'string' || !ENTRY_NAME.test(name) || name.length > 200) return `name must be "namespace/name" (each part starting with a letter or digit; letters, digits, "." and "-" in the namespace, also "_" after the "/"; at most 200 characters), e.g. "io.github.owner/server"; got ${JSON.stringify(name)}`;
  return null;
}

/** Why VERSION is not an entry version, or null when it is one. */
export function entryVersionProblem(version: unknown): string | null {
  if (typeof version !== 'string' || !ENTRY_VERSION.test(version) || version.length > 255) {
    return `version must be one exact version such as "1.2.3": a letter or digit, then letters, digits, ".", "+", "!", "_" or "-" (no "/", whitespace, control characters or ranges; at most 255 characters); got ${JSON.stringify(version)}`;
  }
  return null;
}

/**
 * The file of entry NAME@VERSION in the registry directory: "/" becomes "_", which no namespace
 * contains, and nothing else changes (both fields are limited to file-name-safe characters), so
 * different entries never share a file name (except on a case-insensitive file system: see addEntry).
 */
export function entryFileName(name: string, version: string): string {
  return `servers/${name.replace('/', '_')}@${version}.json`;
}

/** Checks a parsed server.json; every problem is named with its JSON path. */
export function validateServerJson(v: unknown): ServerJson {
  const problems: string[] = [];
  if (!isObject(v)) throw new Error('server.json must be a JSON object');
  for (const p of [entryNameProblem(v.name), entryVersionProblem(v.version)]) if (p) problems.push(p);
  if (!Array.isArray(v.packages) || v.packages.length === 0) problems.push('packages must list at least one package (remote-only servers are not run by Tollgate)');
  for (const [i, p] of (Array.isArray(v.packages) ? v.packages : []).entries()) {
    const at = `packages[${i}]`;
    if (!isObject(p)) { problems.push(`${at} must be an object`); continue; }
    const before = problems.length;
    if (!['npm', 'pypi', 'oci'].includes(p.registryType as string)) problems.push(`${at}.registryType must be npm, pypi or oci (got ${JSON.stringify(p.registryType)})`);
    if (typeof p.identifier !== 'string' || !p.identifier) problems.push(`${at}.identifier must be a non-empty string`);
    if (p.registryType !== 'oci' && (typeof p.version !== 'string' || !p.version)) problems.push(`${at}.version must pin the package version`);
    if (problems.length === before) {
      const problem = packageSourceProblem(p as unknown as RegistryPackage);
      if (problem) problems.push(`${at}: ${problem}`);
    }
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
  // Checked again where it is used: an entry that did not come through validateServerJson (or an
  // older Tollgate's registry) must not put an option or a URL where a package or image goes.
  const problem = packageSourceProblem(pkg);
  if (problem) throw new SourceError(`registry entry ${entry.name}@${entry.version}: ${problem}`);
  return { source: packageSource(pkg), args, pkg };
}

/**
 * The source a registry package stands for: npm -> npx:IDENTIFIER@VERSION, pypi ->
 * uvx:IDENTIFIER@VERSION, oci -> image:IDENTIFIER[:VERSION]. Not checked: see packageSourceProblem.
 */
function packageSource(pkg: RegistryPackage): ServerSource {
  switch (pkg.registryType) {
    case 'npm': return { kind: 'npx', pkg: pkg.identifier, version: pkg.version ?? '' };
    case 'pypi': return { kind: 'uvx', pkg: pkg.identifier, version: pkg.version ?? '' };
    case 'oci': return { kind: 'image', ref: pkg.version ? `${pkg.identifier}:${pkg.version}` : pkg.identifier };
  }
}

/**
 * Why a registry package is not something Tollgate may install or run, or null: its identifier and
 * version follow the same rules as the sources `tollgate run --from` takes (source.ts): an npm
 * package name and exact semver version, a PyPI name and PEP 440 version, or a plain image
 * reference (an OCI identifier with a version is a name without tag or digest, the version its tag).
 */
export function packageSourceProblem(pkg: RegistryPackage): string | null {
  if (!['npm', 'pypi', 'oci'].includes(pkg.registryType)) return `registryType must be npm, pypi or oci (got ${JSON.stringify(pkg.registryType)})`;
  if (typeof pkg.identifier !== 'string' || !pkg.identifier) return 'identifier must be a non-empty string';
  if (pkg.version !== undefined && (typeof pkg.version !== 'string' || !pkg.version)) return 'version must be a non-empty string when given';
  if (pkg.registryType !== 'oci' && !pkg.version) return 'version must pin the package version';
  if (pkg.registryType === 'oci' && pkg.version) {
    const bare = imageRefProblem(pkg.identifier, { bare: true });
    if (bare) return `identifier ${bare} (the version is the tag)`;
  }
  const problem = sourceProblem(packageSource(pkg));
  return problem ? `${pkg.registryType} package: ${problem}` : null;
}
