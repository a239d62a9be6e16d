import { isRevision, parseRevision, REVISION_DIGITS, revisionDescription, revisionString } from './revision.js';
import { isObject } from '../util/object.js';

/**
 * The KV record naming the bundle in force. It is not trusted for anything security-relevant:
 * authz checks the signature and takes the revision from the signed manifest, so a pointer moved
 * to an old (validly signed) object is refused as "not newer".
 */
export interface BundlePointer {
  /** Monotonic across publishes and control-plane restarts; equals the manifest's revision. */
  revision: number;
  /** Object name in the bundle object store. */
  object: string;
  /** SHA-256 (hex) of the object bytes, the gzipped tarball. */
  sha256: string;
  size: number;
  published_at: string;
  /** Digest of the bundle's content ignoring revision and signature (see manifest.contentDigest). */
  content_sha256: string;
  /** Key id the bundle is signed with. */
  kid: string;
}

export const DEFAULT_OBJECT_BUCKET = 'tollgate_bundles';
export const DEFAULT_KV_BUCKET = 'tollgate_policy';
/** One pointer per policy set; `current` is the default set. */
export const DEFAULT_POINTER_KEY = 'current';

export function objectName(pointerKey: string, revision: number, sha256: string): string {
  // The digest suffix keeps two racing publishers from overwriting each other's object before
  // the CAS on the pointer decides which one wins.
  return `${pointerKey}/${revisionString(revision).padStart(REVISION_DIGITS, '0')}-${sha256.slice(0, 16)}`;
}

/** Revision and digest prefix from an object name of this policy set; null for anything else. */
export function parseObjectName(pointerKey: string, name: string): { revision: number; shaPrefix: string } | null {
  const prefix = pointerKey + '/';
  if (!name.startsWith(prefix)) return null;
  const m = /^(\d{12})-([0-9a-f]{16})$/.exec(name.slice(prefix.length));
  if (!m) return null;
  const revision = parseRevision(m[1]!.replace(/^0+/, ''));
  return revision === null ? null : { revision, shaPrefix: m[2]! };
}

export { parseRevision, revisionString };

/** Parses and checks a pointer record; the message says which field is wrong. */
export function parsePointer(bytes: Uint8Array): BundlePointer {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (e) {
    throw new Error(`bundle pointer is not valid JSON: ${(e as Error).message}`);
  }
  if (!isObject(doc)) throw new Error('bundle pointer must be a JSON object');
  const { revision, object, sha256, size, published_at, content_sha256, kid } = doc;
  if (!isRevision(revision)) throw new Error(`bundle pointer: "revision" must be ${revisionDescription()}, got ${JSON.stringify(revision)}`);
  if (typeof object !== 'string' || !object) throw new Error('bundle pointer: "object" must be a non-empty string');
  if (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)) throw new Error('bundle pointer: "sha256" must be 64 lowercase hex digits');
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new Error('bundle pointer: "size" must be a non-negative integer');
  if (typeof published_at !== 'string') throw new Error('bundle pointer: "published_at" must be a string');
  return {
    revision, object, sha256, size, published_at,
    content_sha256: typeof content_sha256 === 'string' ? content_sha256 : '',
    kid: typeof kid === 'string' ? kid : '',
  };
}

export function encodePointer(p: BundlePointer): Uint8Array {
  return Buffer.from(JSON.stringify(p));
}
