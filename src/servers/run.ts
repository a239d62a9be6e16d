import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { StdioBridge } from '../bridge/server.js';
import type { LaunchSpec } from '../bridge/types.js';
import type { ServerProvenance } from '../contract/policy.js';
import { loadPinnedKeys, loadRegistryConfig } from '../registry/config.js';
import { runnableOf } from '../registry/server-json.js';
import { findEntry } from '../registry/store.js';
import { envFileText, podmanInvocation, removeEnvFile, writeEnvFile } from './container-env.js';
import { EGRESS_RELAY_SCRIPT, EgressProxy } from './egress-proxy.js';
import { serverEnv, type ServerEnvSpec } from './env.js';
import { npmImage, pypiImage, type ServerImage } from './image.js';
import { podmanRunArgs } from './podman-args.js';
import { DEFAULT_PROFILE, type PermissionProfile } from './profile.js';
import { installNpm, installPypi, type InstalledServer } from './install.js';
import { formatSource, type ServerSource } from '../registry/source.js';

export type Isolation = 'none' | 'podman';

export interface ServerRunSpec {
  name: string;
  source: ServerSource;
  /** The operator's arguments, after the registry entry's own. */
  args: string[];
  env: ServerEnvSpec;
  isolation: Isolation;
  /** What the container may reach (podman isolation); default: nothing. */
  profile?: PermissionProfile;
  /** Registry lookup for a bare entry name. */
  registry?: { config?: string; dir?: string; keys?: string[]; allowUnverified?: boolean };
  stateDir: string;
  log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  /** Bridge port (0: any free one). */
  port?: number;
}

export interface RunningServer {
  name: string;
  bridge: StdioBridge;
  provenance: ServerProvenance;
  /** Names (never values) of the variables the server gets from the operator. */
  envNames: string[];
  /** The egress proxy (podman isolation with an outbound allow-list), for its decisions. */
  egress?: EgressProxy | null;
  stop(): Promise<void>;
}

export class RunRefused extends Error {}

interface Resolved { source: Exclude<ServerSource, { kind: 'registry' }>; args: string[]; provenance: ServerProvenance; requiredEnv: string[] }

/** A registry name becomes the package its verified entry names; an unverified one is refused unless overridden. */
async function resolveSource(spec: ServerRunSpec): Promise<Resolved> {
  const s = spec.source;
  if (s.kind !== 'registry') {
    return { source: s, args: spec.args, provenance: { source: formatSource(s), registry: null, entry: null, version: null, verified: false }, requiredEnv: [] };
  }
  const cfg = loadRegistryConfig(spec.registry?.config, { dir: spec.registry?.dir, keys: spec.registry?.keys });
  const keys = await loadPinnedKeys(cfg.trustedKeys);
  const [name, version] = s.name.includes('@') ? [s.name.slice(0, s.name.lastIndexOf('@')), s.name.slice(s.name.lastIndexOf('@') + 1)] : [s.name, undefined];
  const status = await findEntry(cfg.dir, keys, name, version);
  if (!status.verified && !spec.registry?.allowUnverified) {
    throw new RunRefused(`refusing to run registry entry ${status.name}@${status.version}: it is not verified (${status.problems.join('; ')}). `
      + 'Fix the registry or its pinned keys; to run it anyway pass --allow-unverified (policy then sees provenance.verified = false).');
  }
  if (!status.entry) throw new RunRefused(`registry entry ${status.name}@${status.version} cannot be read: ${status.problems.join('; ')}`);
  const r = runnableOf(status.entry);
  if (r.source.kind === 'registry') throw new Error('unreachable');
  return {
    source: r.source, args: [...r.args, ...spec.args],
    provenance: { source: formatSource(r.source), registry: cfg.dir, entry: status.name, version: status.version, verified: status.verified },
    requiredEnv: (r.pkg.environmentVariables ?? []).filter((e) => e.isRequired && e.default === undefined).map((e) => e.name),
  };
}

async function install(source: Resolved['source']): Promise<InstalledServer> {
  if (source.kind === 'npx') return installNpm(source.pkg, source.version);
  if (source.kind === 'uvx') return installPypi(source.pkg, source.version);
  throw new RunRefused(`image sources need --isolation podman (${source.ref})`);
}

/**
 * Resolves, installs and bridges one stdio server: the returned bridge speaks Streamable HTTP on
 * loopback and starts a server process per session. Governing it (Envoy + authz) is the caller's.
 */
export async function startServer(spec: ServerRunSpec): Promise<RunningServer> {
  const resolved = await resolveSource(spec);
  const home = resolve(join(spec.stateDir, 'servers', spec.name, 'home'));
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const { env, names } = serverEnv(spec.env, home);
  const missing = resolved.requiredEnv.filter((n) => !(n in env));
  if (missing.length) throw new RunRefused(`server ${spec.name} needs ${missing.join(', ')}: give them with --env, --env-file or --secret`);
  if (spec.isolation === 'podman') return startContained(spec, resolved, env, names);
  if (spec.profile && (spec.profile.mounts.length || spec.profile.outbound.hosts.length || spec.profile.outbound.allowAll)) {
    throw new RunRefused(`a permission profile needs --isolation podman: a local process (--isolation none) cannot be held to it`);
  }
  const installed = await install(resolved.source);
  const launch = (): LaunchSpec => ({ command: installed.command, args: [...installed.args, ...resolved.args], env, cwd: home, label: resolved.provenance.source });
  const bridge = await StdioBridge.start({ name: spec.name, launch, port: spec.port ?? 0, log: spec.log });
  spec.log?.('info', 'server ready', { server: spec.name, source: resolved.provenance.source, isolation: spec.isolation, env: names, bridge: bridge.url });
  return { name: spec.name, bridge, provenance: resolved.provenance, envNames: names, stop: () => bridge.close() };
}

async function imageFor(source: Resolved['source']): Promise<ServerImage> {
  if (source.kind === 'npx') return npmImage(await installNpm(source.pkg, source.version));
  if (source.kind === 'uvx') return pypiImage(source.pkg, source.version);
  return { image: source.ref, command: [] };
}

/** Each session's server in its own locked-down container (src/servers/podman-args.ts). */
async function startContained(spec: ServerRunSpec, resolved: Resolved, env: Record<string, string>, names: string[]): Promise<RunningServer> {
  const profile = spec.profile ?? DEFAULT_PROFILE;
  // The operator's variables, for the container only (never podman's own environment).
  const vars = Object.fromEntries(names.map((n) => [n, env[n]!]));
  try { envFileText(vars); } catch (e) { throw new RunRefused(`server ${spec.name}: ${(e as Error).message}`); }
  for (const m of profile.mounts) if (!existsSync(m.host)) throw new RunRefused(`profile mount ${m.host} does not exist`);
  const img = await imageFor(resolved.source);
  const wantsEgress = profile.outbound.allowAll || profile.outbound.hosts.length > 0;
  if (wantsEgress && img.command.length === 0) throw new RunRefused('outbound allow-lists need a package source (npx:/uvx:): the command of an image: source is not known to wrap');
  const base = resolve(join(spec.stateDir, 'servers', spec.name));
  let egress: EgressProxy | null = null;
  let relay: string | null = null;
  if (wantsEgress) {
    egress = await EgressProxy.start(join(base, 'egress'), profile, (msg, f) => spec.log?.('info', msg, { server: spec.name, ...f }));
    relay = join(base, 'egress-relay.mjs');
    writeFileSync(relay, EGRESS_RELAY_SCRIPT, { mode: 0o644 });
  }
  // Values reach the container through a root-only env file, never podman's environment or arguments.
  const envDir = join(base, 'podman-env');
  let bridge: StdioBridge;
  try {
    const envFile = names.length ? writeEnvFile(envDir, vars) : (removeEnvFile(envDir), null);
    const invocation = podmanInvocation(podmanRunArgs({
      image: img.image, command: [...img.command, ...resolved.args], envFile, profile, name: spec.name,
      egressSocketDir: egress?.dir ?? null, relayScript: relay,
    }));
    const launch = (): LaunchSpec => ({ ...invocation, label: `${resolved.provenance.source} in ${img.image}` });
    bridge = await StdioBridge.start({ name: spec.name, launch, port: spec.port ?? 0, log: spec.log });
  } catch (e) {
    removeEnvFile(envDir);
    await egress?.close();
    throw e;
  }
  spec.log?.('info', 'server ready', { server: spec.name, source: resolved.provenance.source, isolation: 'podman', image: img.image, env: names, bridge: bridge.url });
  return {
    name: spec.name, bridge, provenance: resolved.provenance, envNames: names, egress,
    stop: async () => { await bridge.close(); removeEnvFile(envDir); await egress?.close(); },
  };
}
