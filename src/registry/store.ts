import { createPrivateKey } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, normalize } from 'node:path';
import { entryFileName, validateServerJson, type ServerJson } from './server-json.js';
import { sha256, signDetached, verifyDetached, type PinnedKey } from './signature.js';

/** index.json: what the registry holds, each entry pinned by the SHA-256 of its server.json. */
export interface RegistryIndex {
  version: 1;
  entries: Array<{ name: string; version: string; file: string; sha256: string }>;
}

export interface EntryStatus {
  name: string;
  version: string;
  file: string;
  verified: boolean;
  /** Why it is not verified (empty when verified). */
  problems: string[];
  /** The entry, when its file could be read and validated at all. */
  entry: ServerJson | null;
}

const INDEX = 'index.json';

function readIndex(dir: string): { bytes: Buffer; index: RegistryIndex } {
  const path = join(dir, INDEX);
  if (!existsSync(path)) throw new Error(`no registry at ${dir} (missing ${INDEX}); create one with tollgate registry add`);
  const bytes = readFileSync(path);
  let doc: unknown;
  try { doc = JSON.parse(bytes.toString('utf8')); } catch { throw new Error(`${path} is not JSON`); }
  const d = doc as Partial<RegistryIndex>;
  if (d.version !== 1 || !Array.isArray(d.entries)) throw new Error(`${path}: expected {"version": 1, "entries": [...]}`);
  for (const e of d.entries) {
    if (typeof e?.name !== 'string' || typeof e.version !== 'string' || typeof e.file !== 'string' || typeof e.sha256 !== 'string') throw new Error(`${path}: each entry needs name, version, file, sha256`);
  }
  return { bytes, index: d as RegistryIndex };
}

/** An entry file path must stay inside the registry directory. */
function entryPath(dir: string, file: string): string | null {
  const n = normalize(file);
  if (n.startsWith('..') || n.startsWith('/') || n.includes('\0')) return null;
  return join(dir, n);
}

function readSig(path: string): string | null {
  try { return readFileSync(`${path}.sig`, 'utf8'); } catch { return null; }
}

/**
 * Checks every entry: the index signature, the entry's hash against the index, the entry's own
 * signature, and that the entry says the name and version the index lists. Both signatures must
 * come from pinned keys. Anything missing or different: not verified, with the reason.
 */
export async function verifyRegistry(dir: string, keys: PinnedKey[]): Promise<EntryStatus[]> {
  const { bytes, index } = readIndex(dir);
  const indexProblems: string[] = [];
  if (keys.length === 0) indexProblems.push('no trusted keys are pinned (trusted_keys in the registry config)');
  else {
    const sig = readSig(join(dir, INDEX));
    if (!sig) indexProblems.push('index.json is not signed (no index.json.sig)');
    else {
      const r = await verifyDetached(bytes, sig, keys);
      if (!r.ok) indexProblems.push(`index signature: ${r.reason}`);
    }
  }
  const out: EntryStatus[] = [];
  for (const e of index.entries) {
    const problems = [...indexProblems];
    let entry: ServerJson | null = null;
    const path = entryPath(dir, e.file);
    if (!path || !existsSync(path)) problems.push(`entry file ${e.file} is missing or outside the registry`);
    else {
      const content = readFileSync(path);
      if (sha256(content) !== e.sha256) problems.push('entry content differs from what the index lists (sha256 mismatch)');
      const sig = readSig(path);
      if (!sig) problems.push('entry is not signed');
      else if (keys.length) {
        const r = await verifyDetached(content, sig, keys);
        if (!r.ok) problems.push(`entry signature: ${r.reason}`);
      }
      try {
        entry = validateServerJson(JSON.parse(content.toString('utf8')));
        if (entry.name !== e.name || entry.version !== e.version) problems.push(`entry says ${entry.name}@${entry.version}, the index ${e.name}@${e.version}`);
      } catch (err) { problems.push((err as Error).message); }
    }
    out.push({ name: e.name, version: e.version, file: e.file, verified: problems.length === 0, problems, entry });
  }
  return out;
}

/** The entry NAME (its newest listed version, or VERSION), verified or not: the caller decides. */
export async function findEntry(dir: string, keys: PinnedKey[], name: string, version?: string): Promise<EntryStatus> {
  const all = await verifyRegistry(dir, keys);
  const hits = all.filter((e) => e.name === name && (version === undefined || e.version === version));
  if (hits.length === 0) {
    const versions = all.filter((e) => e.name === name).map((e) => e.version);
    if (versions.length) throw new Error(`registry entry ${name} has no version ${JSON.stringify(version)} in ${dir} (versions: ${versions.join(', ')})`);
    const names = [...new Set(all.map((e) => e.name))];
    throw new Error(`no registry entry ${name} in ${dir} (entries: ${names.join(', ') || 'none'})`);
  }
  return hits[hits.length - 1]!;
}

async function writeSigned(path: string, bytes: Buffer, privatePem: string): Promise<void> {
  const key = createPrivateKey(privatePem);
  const sig = await signDetached(bytes, key);
  // Content first, then signature, each by rename: a reader never sees a torn file.
  writeFileSync(`${path}.tmp`, bytes);
  renameSync(`${path}.tmp`, path);
  writeFileSync(`${path}.sig.tmp`, sig + '\n');
  renameSync(`${path}.sig.tmp`, `${path}.sig`);
}

/** Adds (or replaces) an entry, signs it, and re-signs the index. */
export async function addEntry(dir: string, serverJson: Buffer, privatePem: string): Promise<{ name: string; version: string; file: string }> {
  let doc: unknown;
  try { doc = JSON.parse(serverJson.toString('utf8')); } catch { throw new Error('server.json is not JSON'); }
  const entry = validateServerJson(doc);
  const file = entryFileName(entry.name, entry.version);
  const index: RegistryIndex = existsSync(join(dir, INDEX)) ? readIndex(dir).index : { version: 1, entries: [] };
  // Names are injective, but an older registry may name files otherwise, and a case-insensitive
  // file system folds "A/b" and "a/b" into one file: never overwrite another entry's file.
  const other = index.entries.find((e) => !(e.name === entry.name && e.version === entry.version) && e.file.toLowerCase() === file.toLowerCase());
  if (other) throw new Error(`${entry.name}@${entry.version} would be written to ${other.file}, the file of entry ${other.name}@${other.version}; refusing to overwrite it`);
  mkdirSync(join(dir, 'servers'), { recursive: true });
  await writeSigned(join(dir, file), serverJson, privatePem);
  index.entries = index.entries.filter((e) => !(e.name === entry.name && e.version === entry.version));
  index.entries.push({ name: entry.name, version: entry.version, file, sha256: sha256(serverJson) });
  await writeSigned(join(dir, INDEX), Buffer.from(JSON.stringify(index, null, 2) + '\n'), privatePem);
  return { name: entry.name, version: entry.version, file };
}
