import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export type ToolName = 'opa' | 'envoy' | 'nats-server' | 'otelcol' | 'hydra';

/** The repository (or installed package) root: two levels above this file in src/ and in dist/src/. */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    dir = dirname(dir);
  }
  throw new Error('cannot locate the tollgate project root (no package.json above ' + fileURLToPath(import.meta.url) + ')');
}

/**
 * Where an external tool lives. `make deps` installs each into .tools/bin; TOLLGATE_TOOLS or
 * TOLLGATE_<NAME> override that, and PATH is the last resort so packaged installs still work.
 */
export function toolPath(name: ToolName): string {
  const envName = 'TOLLGATE_' + name.toUpperCase().replace('-', '_');
  const explicit = process.env[envName];
  if (explicit) return explicit;
  const dirs = [process.env.TOLLGATE_TOOLS, join(projectRoot(), '.tools', 'bin')].filter((d): d is string => !!d);
  for (const d of dirs) {
    const p = resolve(d, name);
    if (existsSync(p)) return p;
  }
  for (const d of (process.env.PATH ?? '').split(':')) {
    if (d && existsSync(join(d, name))) return join(d, name);
  }
  throw new Error(`${name} not found: run \`make deps\` (installs it into .tools/bin) or set ${envName}`);
}
