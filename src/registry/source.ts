/**
 * Where a server Tollgate runs comes from: `npx:PKG@VER` (npm), `uvx:PKG@VER` (PyPI),
 * `image:REF` (a container image), or a bare registry entry name.
 */
export type ServerSource =
  | { kind: 'npx'; pkg: string; version: string }
  | { kind: 'uvx'; pkg: string; version: string }
  | { kind: 'image'; ref: string }
  | { kind: 'registry'; name: string };

// Anchored, no nested quantifiers: linear on any input.
const NPM_NAME = /^(?:@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*$/;
const PYPI_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const VERSION = /^[0-9A-Za-z][0-9A-Za-z.+!_-]*$/;
const IMAGE_REF = /^[a-z0-9][a-z0-9._/:@-]*$/;
const REGISTRY_NAME = /^[A-Za-z0-9][A-Za-z0-9._/-]*$/;

export class SourceError extends Error {}

/** The exact version only: a server that changes under the same name would defeat review and pinning. */
function splitVersion(spec: string, sep: string, what: string, example: string): { name: string; version: string } {
  const at = spec.lastIndexOf(sep);
  if (at <= 0) throw new SourceError(`${what} "${spec}" has no version: pin one, e.g. ${example}`);
  return { name: spec.slice(0, at), version: spec.slice(at + sep.length) };
}

export function parseSource(s: string): ServerSource {
  if (s.startsWith('npx:')) {
    const { name, version } = splitVersion(s.slice(4), '@', 'npm package', 'npx:@modelcontextprotocol/server-everything@2026.8.31');
    if (!NPM_NAME.test(name)) throw new SourceError(`"${name}" is not an npm package name`);
    if (!VERSION.test(version)) throw new SourceError(`"${version}" is not a version`);
    return { kind: 'npx', pkg: name, version };
  }
  if (s.startsWith('uvx:')) {
    const spec = s.slice(4);
    const { name, version } = splitVersion(spec, spec.includes('==') ? '==' : '@', 'PyPI package', 'uvx:mcp-server-time@2026.10.19');
    if (!PYPI_NAME.test(name)) throw new SourceError(`"${name}" is not a PyPI package name`);
    if (!VERSION.test(version)) throw new SourceError(`"${version}" is not a version`);
    return { kind: 'uvx', pkg: name, version };
  }
  if (s.startsWith('image:')) {
    const ref = s.slice(6);
    if (!IMAGE_REF.test(ref) || ref.length > 255) throw new SourceError(`"${ref}" is not an image reference`);
    return { kind: 'image', ref };
  }
  if (s.includes(':')) throw new SourceError(`unknown source "${s}": use npx:PKG@VER, uvx:PKG@VER, image:REF or a registry entry name`);
  if (!REGISTRY_NAME.test(s)) throw new SourceError(`"${s}" is not a registry entry name`);
  return { kind: 'registry', name: s };
}

export function formatSource(s: ServerSource): string {
  switch (s.kind) {
    case 'npx': return `npx:${s.pkg}@${s.version}`;
    case 'uvx': return `uvx:${s.pkg}@${s.version}`;
    case 'image': return `image:${s.ref}`;
    case 'registry': return s.name;
  }
}

/** `NAME=SOURCE` as `tollgate up --server` takes it. */
export function parseServerSpec(spec: string): { name: string; source: ServerSource } {
  const eq = spec.indexOf('=');
  if (eq <= 0) throw new SourceError(`--server wants NAME=SOURCE (e.g. fs=npx:@modelcontextprotocol/server-filesystem@2026.8.31), got "${spec}"`);
  const name = spec.slice(0, eq);
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(name)) throw new SourceError(`server name "${name}" must be lowercase letters, digits and dashes`);
  return { name, source: parseSource(spec.slice(eq + 1)) };
}
