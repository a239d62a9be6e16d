import { readFileSync } from 'node:fs';

/**
 * The environment a server process gets: nothing inherited from Tollgate's own environment (it
 * may hold Tollgate's credentials) except what a program needs to run, plus what the operator
 * names: `--env K=V`, `--env-file FILE` (K=V lines), `--secret K=FILE` (value read from a file).
 * Values never go to logs, records or callers; only the names do.
 */
export interface ServerEnvSpec {
  env?: string[];
  envFiles?: string[];
  secrets?: string[];
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

function pair(s: string, what: string): [string, string] {
  const eq = s.indexOf('=');
  const k = eq > 0 ? s.slice(0, eq) : '';
  if (!NAME.test(k)) throw new Error(`${what} wants NAME=VALUE with a variable name, got "${s.slice(0, 40)}"`);
  return [k, s.slice(eq + 1)];
}

export function readEnvFile(path: string): Record<string, string> {
  const out: Record<string, string> = {};
  let text: string;
  try { text = readFileSync(path, 'utf8'); } catch (e) { throw new Error(`cannot read env file ${path}: ${(e as Error).message}`); }
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    try {
      const [k, v] = pair(line, `${path}:${i + 1}`);
      out[k] = v;
    } catch (e) { throw new Error((e as Error).message.replace(/, got .*/, '')); }
  }
  return out;
}

export function serverEnv(spec: ServerEnvSpec, home: string): { env: Record<string, string>; names: string[] } {
  const user: Record<string, string> = {};
  for (const f of spec.envFiles ?? []) Object.assign(user, readEnvFile(f));
  for (const e of spec.env ?? []) { const [k, v] = pair(e, '--env'); user[k] = v; }
  for (const s of spec.secrets ?? []) {
    const [k, file] = pair(s, '--secret');
    try { user[k] = readFileSync(file, 'utf8').replace(/\r?\n$/, ''); } catch (e) { throw new Error(`--secret ${k}: cannot read ${file}: ${(e as Error).message}`); }
  }
  const base: Record<string, string> = { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin', HOME: home, LANG: 'C.UTF-8' };
  return { env: { ...base, ...user }, names: Object.keys(user).sort() };
}
