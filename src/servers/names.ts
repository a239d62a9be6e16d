import { createHash } from 'node:crypto';
import { imageRefProblem } from '../registry/source.js';
import { serverImageName } from './image-contract.js';

/**
 * Names derived from a package source (install cache directories, local image tags) must be
 * injective: two different sources may never share one, or a cached install or a built image of
 * one package would be used for another (`@a/b` and `a-b`, `1!0` and `1-0`, `A` and `a` on a
 * case-insensitive file system). The readable part is lossy; the hash of the exact source makes
 * the name unique.
 */

type PackageSource = { kind: 'npx' | 'uvx'; pkg: string; version: string };

/** The exact source as one string (the parts are joined with a byte no name or version holds). */
function exact(s: PackageSource): string {
  return `${s.kind}\0${s.pkg}\0${s.version}`;
}

/** 16 hex digits of SHA-256 of the exact source. */
export function sourceHash(s: PackageSource): string {
  return createHash('sha256').update(exact(s)).digest('hex').slice(0, 16);
}

const readable = (s: string): string => s.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 80);

/** Directory name of one installed package in the cache: readable, then the source's hash. */
export function cacheDirName(s: PackageSource, extra = ''): string {
  const sep = s.kind === 'npx' ? '@' : '==';
  return `${readable(s.pkg)}${sep}${readable(s.version)}${extra}-${sourceHash(s)}`;
}

/** Repository prefix of the images `tollgate run`/`up` builds: apart from `images build-server` ones. */
export const LOCAL_IMAGE_PREFIX = 'localhost/tollgate-run';

/**
 * The local image a package source runs from under --isolation podman: the Kubernetes name
 * (serverImageName: an npm scope is its own path component) under LOCAL_IMAGE_PREFIX, with a tag
 * of the version, the source's hash and `suffix` (base image id, Python version).
 */
export function localServerImage(s: PackageSource, suffix: string): string {
  // The source's hash in the tag keeps apart what the readable part folds: "~" (legacy npm names,
  // which have no repository spelling of their own) becomes "-", and a version is cut to 64
  // characters, as a tag holds at most 128.
  const readablePart = { ...s, version: s.version.slice(0, 64), ...(s.kind === 'npx' ? { pkg: s.pkg.replace(/~/g, '-') } : {}) };
  const name = serverImageName(readablePart, LOCAL_IMAGE_PREFIX);
  const colon = name.lastIndexOf(':');
  return `${name.slice(0, colon)}:${name.slice(colon + 1)}-${sourceHash(s)}-${suffix}`;
}

/**
 * Refuses what is not an image reference, by the OCI grammar of src/registry/source.ts
 * (imageRefProblem: no transports, no URLs, no leading "-", every part from a closed set of
 * characters). An image reference goes into a Containerfile (`FROM`, `LABEL`) and onto podman's
 * command line, where a line break would add instructions and a leading `-` would be an option.
 */
export function checkImageRef(ref: string, what: string): string {
  const problem = imageRefProblem(ref);
  // The reason quotes the reference as given: escaped and cut, so a line break cannot forge output.
  if (problem) throw new Error(`${what} ${JSON.stringify(ref.slice(0, 100))} is not an image reference (${JSON.stringify(problem.slice(0, 300)).slice(1, -1)})`);
  return ref;
}
