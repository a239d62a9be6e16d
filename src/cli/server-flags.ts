import type { ServerEnvSpec } from '../servers/env.js';
import { loadProfile, type PermissionProfile } from '../servers/profile.js';
import type { Isolation } from '../servers/run.js';
import { UsageError } from './types.js';

/** Flags `tollgate run` and `tollgate up --server` share (docs/servers.md). */
export const SERVER_FLAGS = {
  env: { type: 'string', multiple: true },
  'env-file': { type: 'string', multiple: true },
  secret: { type: 'string', multiple: true },
  isolation: { type: 'string' },
  profile: { type: 'string' },
  'allow-unverified': { type: 'boolean' },
  'registry-config': { type: 'string' },
} as const;

export const SERVER_FLAGS_USAGE = `  --isolation M    podman (default: own container, default-deny profile) or none (a plain
                   local process with your rights: no filesystem or network isolation)
  --profile FILE   permission profile, ToolHive JSON: {"read": [...], "write": [...],
                   "network": {"outbound": {"allow_host": [...], "allow_port": [...]}}}; default: nothing
  --env K=V        environment variable for the server (repeatable)
  --env-file FILE  K=V lines for the server (repeatable)
  --secret K=FILE  variable K holds FILE's content (API keys: never passed by callers, never logged)
  --allow-unverified  run a registry entry whose signatures do not check out (policy sees verified=false)
  --registry-config FILE  registry and pinned keys (default $TOLLGATE_REGISTRY_CONFIG or ./tollgate-registry.yaml)
`;

export interface ServerFlagValues {
  env?: string[]; 'env-file'?: string[]; secret?: string[]; isolation?: string; profile?: string; 'allow-unverified'?: boolean; 'registry-config'?: string;
}

export function serverOptions(v: ServerFlagValues): { env: ServerEnvSpec; isolation: Isolation; profile?: PermissionProfile; registry: { config?: string; allowUnverified: boolean } } {
  const isolation = (v.isolation ?? 'podman') as Isolation;
  if (isolation !== 'podman' && isolation !== 'none') throw new UsageError('--isolation must be podman or none');
  let profile: PermissionProfile | undefined;
  if (v.profile) { try { profile = loadProfile(v.profile); } catch (e) { throw new UsageError((e as Error).message); } }
  return {
    profile,
    env: { env: v.env ?? [], envFiles: v['env-file'] ?? [], secrets: v.secret ?? [] },
    isolation,
    registry: { config: v['registry-config'], allowUnverified: v['allow-unverified'] ?? false },
  };
}

/** argv split at `--`: what follows goes to the server unchanged. */
export function splitServerArgs(argv: string[]): { own: string[]; serverArgs: string[] } {
  const i = argv.indexOf('--');
  return i < 0 ? { own: argv, serverArgs: [] } : { own: argv.slice(0, i), serverArgs: argv.slice(i + 1) };
}
