import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { loadProfile } from './profile.js';
import { parseServerSpec } from '../registry/source.js';
import type { Isolation, ServerRunSpec } from './run.js';

/** One server as `tollgate up --servers FILE` lists it (docs/servers.md). */
export type ServerFileEntry = Omit<ServerRunSpec, 'stateDir' | 'log' | 'port'>;

const KNOWN = ['name', 'source', 'args', 'env', 'env_files', 'secrets', 'isolation', 'profile', 'allow_unverified'];

export function loadServersFile(path: string): ServerFileEntry[] {
  let doc: unknown;
  try { doc = parseYaml(readFileSync(path, 'utf8')); } catch (e) { throw new Error(`cannot read ${path}: ${(e as Error).message}`); }
  const list = (doc as { servers?: unknown } | null)?.servers;
  if (!Array.isArray(list) || list.length === 0) throw new Error(`${path}: expected "servers:" with a list of {name, source, ...}`);
  const base = dirname(resolve(path));
  const seen = new Set<string>();
  return list.map((raw, i) => {
    const at = `${path}: servers[${i}]`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${at} must be a mapping`);
    const o = raw as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!KNOWN.includes(k)) throw new Error(`${at}: unknown field "${k}" (known: ${KNOWN.join(', ')})`);
    if (typeof o.name !== 'string' || typeof o.source !== 'string') throw new Error(`${at}: name and source are required strings`);
    const { name, source } = parseServerSpec(`${o.name}=${o.source}`);
    if (seen.has(name)) throw new Error(`${at}: server name ${name} is used twice`);
    seen.add(name);
    const strings = (k: string): string[] => {
      const v = o[k] ?? [];
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new Error(`${at}: ${k} must be a list of strings`);
      return v as string[];
    };
    const mapping = (k: string): Record<string, string> => {
      const v = o[k] ?? {};
      if (typeof v !== 'object' || v === null || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'string')) throw new Error(`${at}: ${k} must map names to strings`);
      return v as Record<string, string>;
    };
    const isolation = (o.isolation ?? 'podman') as Isolation;
    if (isolation !== 'none' && isolation !== 'podman') throw new Error(`${at}: isolation must be podman or none`);
    if (o.profile !== undefined && typeof o.profile !== 'string') throw new Error(`${at}: profile must be a file path`);
    return {
      name, source, args: strings('args'), isolation,
      ...(o.profile ? { profile: loadProfile(resolve(base, o.profile as string)) } : {}),
      env: {
        env: Object.entries(mapping('env')).map(([k, v]) => `${k}=${v}`),
        envFiles: strings('env_files').map((f) => resolve(base, f)),
        secrets: Object.entries(mapping('secrets')).map(([k, f]) => `${k}=${resolve(base, f)}`),
      },
      registry: { allowUnverified: o.allow_unverified === true },
    };
  });
}
