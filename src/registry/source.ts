/**
 * Where a server Tollgate runs comes from: `npx:PKG@VER` (npm), `uvx:PKG@VER` (PyPI),
 * `image:REF` (a container image), or a registry entry name, optionally `NAME@VERSION`.
 */
export type ServerSource =
  | { kind: 'npx'; pkg: string; version: string }
  | { kind: 'uvx'; pkg: string; version: string }
  | { kind: 'image'; ref: string }
  | { kind: 'registry'; name: string };

// Every check below is an anchored regex without nested quantifiers, or a split followed by such
// checks: linear on any input.
const NPM_NAME = /^(?:@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*$/;
const PYPI_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const REGISTRY_NAME = /^[A-Za-z0-9][A-Za-z0-9._/-]*$/;
/** The registry entry version rule of server-json.ts (entryVersionProblem). */
const REGISTRY_VERSION = /^[A-Za-z0-9][A-Za-z0-9.+!_-]*$/;

/** npm and pip install a version spelled like an archive as a local file (`pkg@1.0.0.tgz` is ./1.0.0.tgz). */
const ARCHIVE_SUFFIX = /\.(?:tgz|tar|tar\.gz|zip|whl)$/i;

export class SourceError extends Error {}

const NUMERIC_ID = /^(?:0|[1-9][0-9]*)$/;
const ALNUM_ID = /^[0-9A-Za-z-]+$/;

/**
 * Exactly one semver 2.0.0 version (semver.org): MAJOR.MINOR.PATCH, numbers without leading zeros,
 * then optionally -PRERELEASE (dot-separated identifiers; numeric ones without leading zeros) and
 * +BUILD (dot-separated identifiers). No ranges, dist-tags, "v" prefixes or "=" operators.
 */
export function isExactSemver(v: string): boolean {
  if (v.length > 256) return false;
  const plus = v.indexOf('+');
  const main = plus < 0 ? v : v.slice(0, plus);
  const build = plus < 0 ? null : v.slice(plus + 1);
  const dash = main.indexOf('-');
  const core = dash < 0 ? main : main.slice(0, dash);
  const pre = dash < 0 ? null : main.slice(dash + 1);
  const nums = core.split('.');
  if (nums.length !== 3 || !nums.every((n) => NUMERIC_ID.test(n))) return false;
  if (pre !== null && !pre.split('.').every((id) => ALNUM_ID.test(id) && (/[A-Za-z-]/.test(id) || NUMERIC_ID.test(id)))) return false;
  if (build !== null && !build.split('.').every((id) => ALNUM_ID.test(id))) return false;
  return true;
}

const DIGITS = /^[0-9]+$/;
const RELEASE_WITH_PRE = /^[0-9]+(?:a|b|rc)[0-9]+$/;
const POST = /^post[0-9]+$/;
const DEV = /^dev[0-9]+$/;

/**
 * Exactly one PEP 440 public version in its normalised spelling: [N!]N(.N)*[{a|b|rc}N][.postN][.devN],
 * e.g. 2026.10.19, 1.0rc1, 2.1.post1, 1!2.0.dev3. No local versions (+...), wildcards, ranges or
 * other spellings ("1.0-RC1", "v1.0": write their normalised form, 1.0rc1 and 1.0).
 */
export function isPep440Version(v: string): boolean {
  if (v.length > 128) return false;
  const bang = v.indexOf('!');
  if (bang >= 0 && !DIGITS.test(v.slice(0, bang))) return false;
  const segs = v.slice(bang + 1).split('.');
  let i = 0;
  while (i < segs.length && DIGITS.test(segs[i]!)) i++;
  if (i < segs.length && RELEASE_WITH_PRE.test(segs[i]!)) i++;
  else if (i === 0) return false;
  if (i < segs.length && POST.test(segs[i]!)) i++;
  if (i < segs.length && DEV.test(segs[i]!)) i++;
  return i === segs.length;
}

/** The transports of containers/image: podman reads `TRANSPORT:...` as one, never as a registry image. */
const TRANSPORTS = new Set(['containers-storage', 'dir', 'docker', 'docker-archive', 'docker-daemon', 'oci', 'oci-archive', 'ostree', 'sif', 'tarball']);
const HOST_LABEL = /^[A-Za-z0-9-]+$/;
const PORT = /^[0-9]{1,5}$/;
const PATH_CHARS = /^[a-z0-9._-]+$/;
const PATH_SEPARATOR = /^(?:\.|_|__|-+)$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;

function isHost(h: string): boolean {
  const colon = h.indexOf(':');
  const host = colon < 0 ? h : h.slice(0, colon);
  if (colon >= 0 && !PORT.test(h.slice(colon + 1))) return false;
  return host.split('.').every((l) => HOST_LABEL.test(l) && !l.startsWith('-') && !l.endsWith('-'));
}

/** A path component: lowercase letters and digits, separated by one ".", "_", "__" or a run of "-". */
function isPathComponent(c: string): boolean {
  if (!PATH_CHARS.test(c)) return false;
  const seps = c.split(/[a-z0-9]+/);
  // A component that starts and ends with a letter or digit splits into '' first and last.
  return seps.length >= 2 && seps[0] === '' && seps[seps.length - 1] === '' && seps.slice(1, -1).every((s) => PATH_SEPARATOR.test(s));
}

/**
 * Why REF is not a plain image reference (OCI distribution grammar), or null when it is one:
 * [HOST[:PORT]/]PATH[:TAG][@sha256:HEX]. HOST is the first component only when it has a "." or
 * a ":" or is "localhost"; PATH components are lowercase letters and digits separated by ".", "_",
 * "__" or "-". Podman transports (oci:DIR, docker-archive:FILE, containers-storage:..., dir:...)
 * and URLs are refused: they would load images from host paths or other stores.
 */
export function imageRefProblem(ref: string, opts: { bare?: boolean } = {}): string | null {
  const what = opts.bare ? 'an image name without tag or digest' : 'an image reference';
  const bad = (why: string): string => `"${ref}" is not ${what}: ${why}`;
  if (ref.length > 512) return bad('longer than 512 characters');
  if (ref.includes('://')) return bad('URLs are not image references');
  if (ref.startsWith('-')) return bad('it starts with "-", like a podman option');
  const firstColon = ref.indexOf(':');
  if (firstColon >= 0 && TRANSPORTS.has(ref.slice(0, firstColon).toLowerCase())) {
    return bad(`"${ref.slice(0, firstColon)}:" is a podman transport; give an image in podman's store as [HOST[:PORT]/]PATH[:TAG][@sha256:DIGEST]`);
  }
  const at = ref.indexOf('@');
  const nameTag = at < 0 ? ref : ref.slice(0, at);
  if (at >= 0) {
    if (opts.bare) return bad('no @digest here');
    if (!DIGEST.test(ref.slice(at + 1))) return bad('the digest must be @sha256: and 64 lowercase hex digits');
  }
  const parts = nameTag.split('/');
  const last = parts[parts.length - 1]!;
  const colon = last.indexOf(':');
  if (colon >= 0) {
    if (opts.bare) return bad('no :tag here');
    if (!TAG.test(last.slice(colon + 1))) return bad('a tag is 1-128 letters, digits, "_", "." and "-", not starting with "." or "-"');
    parts[parts.length - 1] = last.slice(0, colon);
  }
  const first = parts[0]!;
  const hasHost = parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (hasHost && !isHost(first)) return bad(`"${first}" is not a registry HOST[:PORT]`);
  const path = hasHost ? parts.slice(1) : parts;
  if (!path.every(isPathComponent)) {
    return bad('each path component is lowercase letters and digits, separated by ".", "_", "__" or "-"; a ":" in the first component must be a registry port');
  }
  if (nameTag.length - (colon >= 0 ? last.length - colon : 0) > 255) return bad('the name is longer than 255 characters');
  return null;
}

/** Why S breaks the rules of its kind, or null when it can be installed or run as it is. */
export function sourceProblem(s: ServerSource): string | null {
  switch (s.kind) {
    case 'npx':
      if (!NPM_NAME.test(s.pkg) || s.pkg.length > 214) return `"${s.pkg}" is not an npm package name`;
      if (!isExactSemver(s.version) || ARCHIVE_SUFFIX.test(s.version)) {
        return `npm package ${s.pkg}: "${s.version}" is not an exact version: npx: sources pin one semver version MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD] `
          + `(no ranges, dist-tags such as "latest", or file names ending in .tgz/.tar/.tar.gz/.zip/.whl), e.g. npx:${s.pkg}@1.2.3`;
      }
      return null;
    case 'uvx':
      if (!PYPI_NAME.test(s.pkg) || s.pkg.length > 214) return `"${s.pkg}" is not a PyPI package name`;
      if (!isPep440Version(s.version) || ARCHIVE_SUFFIX.test(s.version)) {
        return `PyPI package ${s.pkg}: "${s.version}" is not an exact version: uvx: sources pin one PEP 440 public version in normalised form `
          + `[N!]N(.N)*[{a|b|rc}N][.postN][.devN] (no ranges, wildcards, local "+" versions or file names), e.g. uvx:${s.pkg}@2026.10.19`;
      }
      return null;
    case 'image':
      return imageRefProblem(s.ref);
    case 'registry': {
      const at = s.name.lastIndexOf('@');
      const name = at < 0 ? s.name : s.name.slice(0, at);
      if (!REGISTRY_NAME.test(name) || name.length > 200) return `"${name}" is not a registry entry name`;
      if (at >= 0) {
        const version = s.name.slice(at + 1);
        if (!REGISTRY_VERSION.test(version) || version.length > 255) {
          return `registry entry ${name}: "${version}" is not an entry version (a letter or digit, then letters, digits, ".", "+", "!", "_" or "-"), e.g. ${name}@1.2.3`;
        }
      }
      return null;
    }
  }
}

/** S itself, or a SourceError naming what is wrong with it. */
export function checkSource<S extends ServerSource>(s: S): S {
  const problem = sourceProblem(s);
  if (problem) throw new SourceError(problem);
  return s;
}

/** The exact version only: a server that changes under the same name would defeat review and pinning. */
function splitVersion(spec: string, sep: string, what: string, example: string): { name: string; version: string } {
  const at = spec.lastIndexOf(sep);
  if (at <= 0) throw new SourceError(`${what} "${spec}" has no version: pin one, e.g. ${example}`);
  return { name: spec.slice(0, at), version: spec.slice(at + sep.length) };
}

export function parseSource(s: string): ServerSource {
  if (s.startsWith('npx:')) {
    const { name, version } = splitVersion(s.slice(4), '@', 'npm package', 'npx:@modelcontextprotocol/server-everything@2026.8.31');
    return checkSource({ kind: 'npx', pkg: name, version });
  }
  if (s.startsWith('uvx:')) {
    const spec = s.slice(4);
    const { name, version } = splitVersion(spec, spec.includes('==') ? '==' : '@', 'PyPI package', 'uvx:mcp-server-time@2026.10.19');
    return checkSource({ kind: 'uvx', pkg: name, version });
  }
  if (s.startsWith('image:')) return checkSource({ kind: 'image', ref: s.slice(6) });
  if (s.includes(':')) throw new SourceError(`unknown source "${s}": use npx:PKG@VER, uvx:PKG@VER, image:REF or a registry entry name (NAME or NAME@VERSION)`);
  return checkSource({ kind: 'registry', name: s });
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
