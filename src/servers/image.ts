import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { baseImage } from '../containers/images.js';
import { imageExists, podmanOk } from '../containers/podman.js';
import { npmBin, serverCacheDir, type InstalledServer } from './install.js';
import { cacheDirName, checkImageRef, localServerImage } from './names.js';

const run = promisify(execFile);

/** A server image and the command that starts its stdio server inside it. */
export interface ServerImage { image: string; command: string[] }

/** The base image ($TOLLGATE_BASE_IMAGE or the default), refused unless it is an image reference. */
function base(): string {
  return checkImageRef(baseImage(), 'the base image ($TOLLGATE_BASE_IMAGE)');
}

/**
 * Packages go into the image at build time: the install directory becomes /opt/server in a layer
 * on `from` (the base image locally; the tollgate image for Kubernetes, which adds the bridge).
 * The build has no network; nothing is fetched when the server runs. `force` rebuilds a tag that
 * exists (a Kubernetes tag carries no base id, so an upgrade must rebuild it).
 */
export async function buildServerLayer(tag: string, context: string, from = baseImage(), force = false): Promise<void> {
  // Both go into the Containerfile: a line break in either would add instructions.
  checkImageRef(from, 'the image to build on (--from, $TOLLGATE_IMAGE, $TOLLGATE_BASE_IMAGE)');
  checkImageRef(tag, 'the server image name');
  if (!force && await imageExists(tag)) return;
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-image-'));
  try {
    const file = join(dir, 'Containerfile');
    writeFileSync(file, `FROM ${from}\nCOPY . /opt/server\nLABEL org.opencontainers.image.title=${tag}\n`);
    await podmanOk(['build', '--quiet', '--pull=never', '--network', 'none', '-t', tag, '-f', file, context], { timeoutMs: 600_000 });
  } finally { rmSync(dir, { recursive: true, force: true }); }
}

/** The command that starts an installed npm package's server from /opt/server in an image. */
export function npmImageCommand(installed: InstalledServer): string[] {
  const pkgDir = join('node_modules', ...installed.pkg.split('/'));
  const meta = JSON.parse(readFileSync(join(installed.dir, pkgDir, 'package.json'), 'utf8')) as { bin?: string | Record<string, string> };
  return ['node', `/opt/server/${pkgDir}/${npmBin(meta, installed.pkg)}`];
}

export async function npmImage(installed: InstalledServer): Promise<ServerImage> {
  const tag = localServerImage({ kind: 'npx', pkg: installed.pkg, version: installed.version }, await baseImageId());
  await buildServerLayer(tag, installed.dir);
  return { image: tag, command: npmImageCommand(installed) };
}

let baseId: Promise<string> | null = null;
/**
 * The first 12 hex digits of the base image's id. Server image tags carry it: a tag names
 * package, version and base, so rebuilding the base (say, python3-minimal to full python3) can
 * never leave a server running on the image built from the old one.
 */
export async function baseImageId(): Promise<string> {
  baseId ??= podmanOk(['image', 'inspect', '--format', '{{.Id}}', base()]).then((out) => {
    const id = out.trim().replace(/^sha256:/, '');
    if (!/^[0-9a-f]{12,}$/.test(id)) throw new Error(`podman reports no usable id for the base image ${baseImage()}: "${out.trim().slice(0, 100)}"`);
    return id.slice(0, 12);
  });
  return baseId.catch((e: unknown) => { baseId = null; throw e; });
}

let basePython: string | null = null;
/** The base image's Python version; refuses a Python without its standard library (python3-minimal). */
export async function basePythonVersion(): Promise<string> {
  basePython ??= (await podmanOk(['run', '--rm', '--network', 'none', base(), 'python3', '-c',
    'import sys\ntry:\n import asyncio, ssl, email\nexcept ImportError as e:\n print("missing:" + e.name); sys.exit(0)\nprint("%d.%d" % sys.version_info[:2])'])).trim();
  if (basePython.startsWith('missing:')) {
    const missing = basePython.slice(8);
    basePython = null;
    throw new Error(`the base image ${baseImage()} has Python without its standard library (no ${missing}): Python MCP servers need python3 (libpython3-stdlib) in images/build-base.sh, not python3-minimal`);
  }
  if (!/^[0-9]{1,2}\.[0-9]{1,3}$/.test(basePython)) {
    const out = basePython;
    basePython = null;
    throw new Error(`the base image ${baseImage()} reports no usable Python version: "${out.slice(0, 100)}"`);
  }
  return basePython;
}

/** The console-script entry point named like the package, as "module:attr". */
function entryPoint(target: string, pkg: string): string {
  const want = pkg.toLowerCase().replace(/[._]/g, '-');
  for (const d of readdirSync(target).filter((n) => n.endsWith('.dist-info'))) {
    const f = join(target, d, 'entry_points.txt');
    if (!existsSync(f)) continue;
    let section = '';
    for (const raw of readFileSync(f, 'utf8').split('\n')) {
      const line = raw.trim();
      if (line.startsWith('[')) { section = line; continue; }
      const eq = line.indexOf('=');
      if (section === '[console_scripts]' && eq > 0 && line.slice(0, eq).trim().toLowerCase() === want) return line.slice(eq + 1).trim();
    }
  }
  throw new Error(`PyPI package ${pkg} declares no console script named ${want}`);
}

/**
 * PyPI packages are installed on the host with pip for the base image's Python (wheels only, for
 * its version and platform), then copied into the image; the server runs from them with the
 * image's python3.
 */
export async function pypiImage(pkg: string, version: string): Promise<ServerImage> {
  const py = await basePythonVersion();
  const tag = localServerImage({ kind: 'uvx', pkg, version }, `py${py}-${await baseImageId()}`);
  const { dir, command } = await pypiForImage(pkg, version);
  await buildServerLayer(tag, dir);
  return { image: tag, command };
}

/** The package installed for the image's Python, and the command that starts it from /opt/server. */
export async function pypiForImage(pkg: string, version: string): Promise<{ dir: string; command: string[] }> {
  const py = await basePythonVersion();
  const target = join(serverCacheDir(), 'pypi-image', cacheDirName({ kind: 'uvx', pkg, version }, `-py${py}`));
  if (!existsSync(join(target, '.tollgate-installed'))) {
    rmSync(target, { recursive: true, force: true });
    mkdirSync(target, { recursive: true });
    await run(process.env.TOLLGATE_PYTHON ?? 'python3', ['-m', 'pip', 'install', '--disable-pip-version-check', '--no-input', '-q', '--target', target,
      '--only-binary=:all:', '--implementation', 'cp', '--python-version', py,
      '--platform', 'manylinux_2_28_x86_64', '--platform', 'manylinux_2_17_x86_64', '--platform', 'manylinux2014_x86_64', '--platform', 'any',
      `${pkg}==${version}`], { timeout: 600_000, maxBuffer: 16 * 1024 * 1024 }).catch((e: Error & { stderr?: string }) => {
      rmSync(target, { recursive: true, force: true });
      throw new Error(`pip could not install ${pkg}==${version} for the image's Python ${py}: ${(e.stderr ?? e.message).slice(-1500)}`);
    });
    writeFileSync(join(target, '.tollgate-installed'), new Date().toISOString() + '\n');
  }
  const entry = entryPoint(target, pkg);
  const [mod, attr] = entry.split(':');
  if (!mod || !attr || !/^[A-Za-z0-9_.]+$/.test(mod) || !/^[A-Za-z0-9_.]+$/.test(attr)) throw new Error(`unusable entry point "${entry}" in ${pkg}`);
  const code = `import sys, importlib; sys.path.insert(0, "/opt/server"); sys.argv[0] = "${pkg}"; f = importlib.import_module("${mod}")\nfor p in "${attr}".split("."): f = getattr(f, p)\nsys.exit(f())`;
  return { dir: target, command: ['python3', '-c', code] };
}
