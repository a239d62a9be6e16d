import { createPublicKey } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { keyId, type PinnedKey } from './signature.js';

/**
 * Registry configuration (docs/servers.md): where the catalogue is, and the public keys pinned to
 * vouch for it. The keys live here, outside the registry directory, so whoever can write the
 * registry cannot also choose the keys it is checked with.
 */
export interface RegistryConfig {
  dir: string;
  /** Paths of PEM public keys (SPKI). */
  trustedKeys: string[];
}

export const DEFAULT_CONFIG_FILE = 'tollgate-registry.yaml';

export function loadRegistryConfig(file: string | undefined, overrides: { dir?: string; keys?: string[] }): RegistryConfig {
  const path = file ?? process.env.TOLLGATE_REGISTRY_CONFIG ?? (existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined);
  let cfg: RegistryConfig = { dir: 'registry', trustedKeys: [] };
  if (path) {
    let doc: unknown;
    try { doc = parseYaml(readFileSync(path, 'utf8')); } catch (e) { throw new Error(`cannot read registry config ${path}: ${(e as Error).message}`); }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error(`${path}: must be a mapping with registry and trusted_keys`);
    const o = doc as Record<string, unknown>;
    for (const k of Object.keys(o)) if (k !== 'registry' && k !== 'trusted_keys') throw new Error(`${path}: unknown field "${k}" (known: registry, trusted_keys)`);
    const base = dirname(resolve(path));
    if (o.registry !== undefined && typeof o.registry !== 'string') throw new Error(`${path}: registry must be a directory path`);
    if (o.trusted_keys !== undefined && (!Array.isArray(o.trusted_keys) || o.trusted_keys.some((k) => typeof k !== 'string'))) throw new Error(`${path}: trusted_keys must be a list of PEM public key files`);
    cfg = {
      dir: resolve(base, (o.registry as string | undefined) ?? 'registry'),
      trustedKeys: ((o.trusted_keys as string[] | undefined) ?? []).map((k) => resolve(base, k)),
    };
  }
  if (overrides.dir) cfg.dir = resolve(overrides.dir);
  if (overrides.keys?.length) cfg.trustedKeys = overrides.keys.map((k) => resolve(k));
  return cfg;
}

export async function loadPinnedKeys(files: string[]): Promise<PinnedKey[]> {
  const out: PinnedKey[] = [];
  for (const f of files) {
    let key;
    try { key = createPublicKey(readFileSync(f, 'utf8')); } catch (e) { throw new Error(`trusted key ${f}: not a PEM public key (${(e as Error).message})`); }
    if (key.asymmetricKeyType !== 'ed25519') throw new Error(`trusted key ${f}: registry keys are Ed25519`);
    out.push({ kid: await keyId(key), key });
  }
  return out;
}
