import { SourceError, type ServerSource } from '../registry/source.js';

/**
 * The contract between a server image and whoever runs it on Kubernetes (the operator) or builds
 * it (tollgate images build-server, or a registry user's own build): the tollgate CLI lives in
 * /opt/tollgate, the installed package in /opt/server, and LAUNCH_FILE names the stdio command
 * that starts the server. The operator runs `tollgate bridge` from the image with that file, so
 * it never needs the package's layout.
 */

export const TOLLGATE_CLI = '/opt/tollgate/dist/src/cli/main.js';
export const LAUNCH_FILE = '/opt/server/tollgate-launch.json';
/** Port the bridge listens on in the pod unless spec.run.port says otherwise. */
export const DEFAULT_BRIDGE_PORT = 8080;
/** Registry prefix of derived server image names unless the operator is told another. */
export const DEFAULT_SERVER_IMAGE_PREFIX = 'localhost';

/** Lowercase, tag-safe: what an image name or tag may hold. */
export function tagPart(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9._-]/g, '-').replace(/^[-.]+/, '');
}

/**
 * The image a package source runs from: PREFIX/tollgate-server-npm/[SCOPE/]NAME:VERSION or
 * PREFIX/tollgate-server-pypi/NAME:VERSION. An npm scope becomes its own path component, so
 * `@a/b` and an unscoped `a-b` can never share an image. Deterministic from the source alone, so
 * the operator (rendering) and the builder agree without talking. An image: source names its image.
 */
export function serverImageName(source: Exclude<ServerSource, { kind: 'registry' }>, prefix = DEFAULT_SERVER_IMAGE_PREFIX): string {
  if (source.kind === 'image') return source.ref;
  const p = prefix.replace(/\/+$/, '');
  // npm names are lowercase [a-z0-9._~-]: all but "~" are already repository characters, and no
  // spelling of "~" in them could not also be a real name, so such (legacy) names are refused.
  if (source.kind === 'npx' && source.pkg.includes('~')) {
    throw new SourceError(`npm package "${source.pkg}": a name with "~" has no image name of its own; build the image yourself and give it as spec.source.image`);
  }
  const repo = source.kind === 'npx'
    ? `tollgate-server-npm/${source.pkg.replace(/^@/, '').split('/').map(tagPart).join('/')}`
    : `tollgate-server-pypi/${tagPart(source.pkg)}`;
  return `${p}/${repo}:${versionTag(source.version)}`;
}

/**
 * A source's version as an image tag, one tag per version: "+" (semver build metadata) and "!"
 * (a PEP 440 epoch) become "_", which neither grammar uses, and case is kept (tags, like semver
 * pre-releases, are case-sensitive). tagPart's folding made 1.0.0+x and 1.0.0-x one image.
 */
export function versionTag(version: string): string {
  const tag = version.replace(/[+!]/g, '_');
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(tag)) throw new SourceError(`version "${version}" cannot be written as an image tag`);
  return tag;
}

/** The container command that serves the image's stdio server over Streamable HTTP on `port`. */
export function bridgeCommand(name: string, port: number, allowHosts: readonly string[]): string[] {
  return ['node', TOLLGATE_CLI, 'bridge', '--name', name, '--host', '127.0.0.1', '--port', String(port), '--launch-file', LAUNCH_FILE,
    ...allowHosts.flatMap((h) => ['--allow-host', h]), '--'];
}
