import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { podmanBinary, podmanEnv } from '../containers/podman.js';

/**
 * How a contained server's variables reach its container, and only its container. podman runs as
 * root on the host: a value in podman's own environment (LD_PRELOAD, CONTAINERS_CONF,
 * CONTAINER_HOST, PATH, ...) would change what podman does. So podman gets a fixed environment
 * of the project's own, and the server's variables travel in an env file (`--env-file`) that only
 * root can read, removed when the server stops. Not `--env NAME=VALUE`: any local user could read
 * the values in podman's command line.
 */

/**
 * podman's whole environment: PATH and the project's podman configuration (podmanEnv), nothing of
 * the server's, nothing the operator set for a server.
 */
export function podmanProcessEnv(): Record<string, string> {
  return podmanEnv({ PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin' }) as Record<string, string>;
}

/** The longest value an env-file line carries (podman reads it with a 64 KiB line buffer). */
const MAX_VALUE = 32 * 1024;

/**
 * Why podman's `--env-file` cannot carry this value exactly, or null. A line break would end the
 * line (and start another variable); podman drops a trailing CR; newer podman versions read quoted
 * values (possibly over several lines) and trim blanks, so a value starting with a quote or with
 * blanks at either end could arrive changed.
 */
export function envFileProblem(value: string): string | null {
  if (/[\r\n]/.test(value)) return 'it holds a line break';
  if (value.includes('\0')) return 'it holds a NUL byte';
  if (/^["'`]/.test(value)) return 'it starts with a quote';
  if (/^[ \t]|[ \t]$/.test(value)) return 'it starts or ends with a blank';
  if (value.length > MAX_VALUE) return `it is longer than ${MAX_VALUE} characters`;
  return null;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `NAME=VALUE` lines in podman's env-file format; throws (naming the variable, never its value) for one it cannot carry. */
export function envFileText(vars: Record<string, string>): string {
  let text = '';
  for (const [name, value] of Object.entries(vars)) {
    if (!NAME.test(name)) throw new Error(`${JSON.stringify(name.slice(0, 40))} is not a variable name`);
    const problem = envFileProblem(value);
    if (problem) throw new Error(`variable ${name} cannot be passed into a container: ${problem} (podman's --env-file cannot carry it exactly); put it in a file the permission profile mounts instead`);
    text += `${name}=${value}\n`;
  }
  return text;
}

/**
 * Writes the env file into a fresh directory `dir` (mode 0700; whatever was there before, a
 * leftover of a crash included, is removed first) as a new file of mode 0600. Returns its path.
 */
export function writeEnvFile(dir: string, vars: Record<string, string>): string {
  const text = envFileText(vars);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dirname(dir), { recursive: true });
  mkdirSync(dir, { mode: 0o700 });
  const file = join(dir, 'server.env');
  writeFileSync(file, text, { mode: 0o600, flag: 'wx' });
  return file;
}

/** Removes the env file's directory (and the file in it). */
export function removeEnvFile(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** The podman invocation for one session: `runArgs` (podmanRunArgs) and podman's fixed environment. */
export function podmanInvocation(runArgs: string[]): { command: string; args: string[]; env: Record<string, string> } {
  return { command: podmanBinary(), args: [...runArgs], env: podmanProcessEnv() };
}
