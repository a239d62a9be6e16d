import { createHash } from 'node:crypto';
import type { BundleFiles } from './archive.js';
import { canonicalJson } from './digest.js';
import { SIGNATURES_PATH } from './sign.js';
import { isObject } from '../util/object.js';

export const MANIFEST_PATH = '/.manifest';

/** The bundle's `.manifest` object, `{}` when absent; throws when it is not a JSON object. */
export function readManifestObject(files: BundleFiles): Record<string, unknown> {
  const raw = files.get(MANIFEST_PATH);
  if (!raw) return {};
  let doc: unknown;
  try {
    doc = JSON.parse(raw.toString('utf8'));
  } catch (e) {
    throw new Error(`/.manifest is not valid JSON: ${(e as Error).message}`);
  }
  if (!isObject(doc)) throw new Error('/.manifest must be a JSON object');
  return doc;
}

/** The manifest's revision, or null when it has none (or an empty one). */
export function manifestRevision(files: BundleFiles): string | null {
  const rev = readManifestObject(files).revision;
  if (rev === undefined || rev === '') return null;
  if (typeof rev !== 'string') throw new Error('/.manifest "revision" must be a string');
  return rev;
}

/** A copy of the bundle whose manifest carries `revision`; everything else is untouched. */
export function withRevision(files: BundleFiles, revision: string): BundleFiles {
  const manifest = { ...readManifestObject(files), revision };
  const out: BundleFiles = new Map(files);
  out.set(MANIFEST_PATH, Buffer.from(JSON.stringify(manifest)));
  return out;
}

/**
 * A digest of what the bundle does, ignoring its revision and signature: two builds of the same
 * sources have the same content digest, so the control plane does not publish a no-op revision.
 */
export function contentDigest(files: BundleFiles): string {
  const h = createHash('sha256');
  for (const path of [...files.keys()].sort()) {
    if (path === SIGNATURES_PATH) continue;
    let body = files.get(path)!;
    if (path === MANIFEST_PATH) {
      const { revision: _r, ...rest } = readManifestObject(files);
      body = Buffer.from(canonicalJson(JSON.stringify(rest)));
    }
    h.update(path).update('\0').update(createHash('sha256').update(body).digest()).update('\0');
  }
  return h.digest('hex');
}
