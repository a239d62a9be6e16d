import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { projectRoot } from '../util/tools.js';
import { cacheDirName } from './names.js';

const run = promisify(execFile);

/** A package installed into Tollgate's cache, and how to start its stdio server. */
export interface InstalledServer {
  kind: 'npx' | 'uvx';
  pkg: string;
  version: string;
  dir: string;
  /** Program and arguments that start the server (before the user's own arguments). */
  command: string;
  args: string[];
}

/** $TOLLGATE_SERVER_CACHE, else .tools/servers under the project: installs are kept by exact version. */
export function serverCacheDir(): string {
  return process.env.TOLLGATE_SERVER_CACHE ?? join(projectRoot(), '.tools', 'servers');
}

const MARKER = '.tollgate-installed';

async function once(dir: string, install: () => Promise<void>): Promise<void> {
  if (existsSync(join(dir, MARKER))) return;
  // A directory without the marker is a half-finished install: start over.
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  try {
    await install();
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    const err = e as Error & { stderr?: string };
    throw new Error(`${err.message.split('\n')[0]}${err.stderr ? `\n${err.stderr.slice(-2000)}` : ''}`);
  }
  writeFileSync(join(dir, MARKER), new Date().toISOString() + '\n');
}

/** Which executable of an npm package is the server: its only bin, or the one named like the package. */
export function npmBin(pkgJson: { name?: string; bin?: string | Record<string, string> }, pkg: string): string {
  const bin = pkgJson.bin;
  if (typeof bin === 'string') return bin;
  const entries = Object.entries(bin ?? {});
  if (entries.length === 0) throw new Error(`npm package ${pkg} has no executable ("bin" in package.json): it is not a runnable server`);
  if (entries.length === 1) return entries[0]![1];
  const base = pkg.split('/').pop()!;
  const hit = entries.find(([k]) => k === base) ?? entries.find(([k]) => base.endsWith(k) || k.endsWith(base));
  if (!hit) throw new Error(`npm package ${pkg} has several executables (${entries.map(([k]) => k).join(', ')}) and none is named like the package`);
  return hit[1];
}

/**
 * `npm install` of a server package. `--ignore-scripts`: installing runs on the host, before any
 * container exists, so no lifecycle script (preinstall, install, postinstall, prepare) of the
 * package or of any dependency may run. A server that needs one (a native module built at install
 * time) must ship prebuilt or run from an `image:` source.
 */
export function npmInstallArgs(dir: string, pkg: string, version: string): string[] {
  return ['install', '--ignore-scripts', '--prefix', dir, '--no-audit', '--no-fund', '--omit=dev', '--loglevel=error', `${pkg}@${version}`];
}

/**
 * `pip install` of a server package into its virtualenv. `--only-binary=:all:`: wheels only, for
 * the package and every dependency; a source distribution would run its setup.py (or build
 * backend) on the host.
 */
export function pipInstallArgs(pkg: string, version: string): string[] {
  return ['install', '--disable-pip-version-check', '--no-input', '-q', '--only-binary=:all:', `${pkg}==${version}`];
}

export async function installNpm(pkg: string, version: string, cache = serverCacheDir()): Promise<InstalledServer> {
  const dir = join(cache, 'npm', cacheDirName({ kind: 'npx', pkg, version }));
  await once(dir, async () => {
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'tollgate-server-install', private: true }) + '\n');
    await run('npm', npmInstallArgs(dir, pkg, version), { timeout: 600_000, maxBuffer: 16 * 1024 * 1024 });
  });
  const pkgDir = join(dir, 'node_modules', ...pkg.split('/'));
  const meta = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version?: string; bin?: string | Record<string, string> };
  if (meta.version !== version) throw new Error(`npm installed ${pkg}@${meta.version}, not the pinned ${version}`);
  return { kind: 'npx', pkg, version, dir, command: process.execPath, args: [join(pkgDir, npmBin(meta, pkg))] };
}

/** Which console script of a PyPI package is the server: the one named like the package. */
function pypiScript(binDir: string, pkg: string): string {
  const want = pkg.toLowerCase().replace(/[._]/g, '-');
  const scripts = readdirSync(binDir);
  const hit = scripts.find((s) => s.toLowerCase() === want);
  if (!hit) throw new Error(`PyPI package ${pkg} installs no console script named ${want} (found: ${scripts.filter((s) => !/^(python|pip|activate|Activate)/.test(s)).join(', ') || 'none'})`);
  return join(binDir, hit);
}

export async function installPypi(pkg: string, version: string, cache = serverCacheDir()): Promise<InstalledServer> {
  const dir = join(cache, 'pypi', cacheDirName({ kind: 'uvx', pkg, version }));
  const python = process.env.TOLLGATE_PYTHON ?? 'python3';
  await once(dir, async () => {
    await run(python, ['-m', 'venv', dir], { timeout: 120_000 });
    await run(join(dir, 'bin', 'pip'), pipInstallArgs(pkg, version), { timeout: 600_000, maxBuffer: 16 * 1024 * 1024 });
  });
  return { kind: 'uvx', pkg, version, dir, command: pypiScript(join(dir, 'bin'), pkg), args: [] };
}
