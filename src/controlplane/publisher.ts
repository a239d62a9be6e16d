import { createHash, createPublicKey } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { placedIn } from '../nats/placement.js';
import { isRevision, nextRevision, parseRevision } from '../bundle/revision.js';
import { readBundle, writeBundle, type BundleFiles } from '../bundle/archive.js';
import type { SigningKey, VerificationKey } from '../bundle/keys.js';
import { contentDigest, manifestRevision, withRevision } from '../bundle/manifest.js';
import {
  DEFAULT_KV_BUCKET, DEFAULT_OBJECT_BUCKET, DEFAULT_POINTER_KEY,
  encodePointer, objectName, parseObjectName, parsePointer, revisionString, type BundlePointer,
} from '../bundle/pointer.js';
import { signBundle, type SignOptions } from '../bundle/sign.js';
import { verifyBundle } from '../bundle/verify.js';

export interface PublisherOptions {
  objectBucket?: string;
  kvBucket?: string;
  /** Pointer key, one per policy set. */
  pointerKey?: string;
  /** Bundle objects kept per policy set (older ones are deleted after a publish). */
  keep?: number;
  /** Attempts when another publisher wins the race for a revision. */
  maxAttempts?: number;
  /** JetStream replicas of the buckets this creates (1, or 3 on a cluster). */
  replicas?: number;
  /** Region (NATS cluster of a supercluster) the buckets this creates are placed in; null: any. */
  region?: string | null;
  /**
   * false: open the buckets the control plane created, never create them (a credential that may
   * publish under some pointer keys but not manage streams: the Kubernetes operator).
   */
  create?: boolean;
}

/** Thrown when the pointer moved underneath us (another control plane published). */
export class RevisionConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RevisionConflictError';
  }
}

export interface PublishMeta {
  content_sha256?: string;
  kid?: string;
}

/**
 * Publishes signed bundles: bytes in a JetStream object store, the pointer in a KV bucket. The
 * pointer only moves by compare-and-set from the entry we read, so revisions never repeat or go
 * backwards, even with several control planes or after a restart.
 */
export class BundlePublisher {
  readonly pointerKey: string;

  private constructor(
    readonly pointerKv: KV,
    private readonly store: ObjectStore,
    private readonly opts: Required<PublisherOptions>,
  ) {
    this.pointerKey = opts.pointerKey;
  }

  /** Opens (creating when missing) the object store and KV bucket. */
  static async open(nc: NatsConnection, options: PublisherOptions = {}): Promise<BundlePublisher> {
    const opts: Required<PublisherOptions> = {
      objectBucket: options.objectBucket ?? DEFAULT_OBJECT_BUCKET,
      kvBucket: options.kvBucket ?? DEFAULT_KV_BUCKET,
      pointerKey: options.pointerKey ?? DEFAULT_POINTER_KEY,
      keep: Math.max(2, options.keep ?? 20),
      maxAttempts: options.maxAttempts ?? 5,
      replicas: options.replicas ?? 1,
      region: options.region ?? null,
      create: options.create ?? true,
    };
    if (!opts.create) {
      try {
        return new BundlePublisher(await new Kvm(nc).open(opts.kvBucket), await new Objm(nc).open(opts.objectBucket), opts);
      } catch (e) {
        throw new Error(`cannot open the bundle buckets ${opts.kvBucket}/${opts.objectBucket} (${(e as Error).message}): the control plane creates them; start it first`);
      }
    }
    const kv = await new Kvm(nc).create(opts.kvBucket, { history: 10, replicas: opts.replicas, description: 'Tollgate policy bundle pointers', ...placedIn(opts.region) });
    const store = await new Objm(nc).create(opts.objectBucket, { replicas: opts.replicas, description: 'Tollgate signed policy bundles', ...placedIn(opts.region) });
    return new BundlePublisher(kv, store, opts);
  }

  /** The pointer entry; `invalid` says why a present entry is not a pointer at all. */
  async currentEntry(): Promise<{ pointer: BundlePointer | null; seq: number; invalid: string | null }> {
    const e: KvEntry | null = await this.pointerKv.get(this.pointerKey);
    if (!e || e.operation !== 'PUT') return { pointer: null, seq: e?.revision ?? 0, invalid: null };
    try {
      return { pointer: parsePointer(e.value), seq: e.revision, invalid: null };
    } catch (err) {
      return { pointer: null, seq: e.revision, invalid: (err as Error).message };
    }
  }

  /** The pointer in force, or null before the first publish (or when the entry is not a pointer). */
  async current(): Promise<BundlePointer | null> {
    return (await this.currentEntry()).pointer;
  }

  /**
   * Why `pointer` is not a bundle this key published, or null when it is: the object exists with
   * the pointer's digest, its signature verifies with `key`, and its signed revision is the
   * pointer's. Whoever can write the KV bucket can write any pointer; only this check makes one
   * trusted.
   */
  async distrust(pointer: BundlePointer, key: SigningKey, signOpts: SignOptions = {}): Promise<string | null> {
    const v = await this.verified(pointer, key, signOpts);
    return typeof v === 'string' ? v : null;
  }

  /** The files of the bundle `pointer` names once it passes distrust()'s checks, or why not. */
  private async verified(pointer: BundlePointer, key: SigningKey, signOpts: SignOptions): Promise<BundleFiles | string> {
    let bytes: Uint8Array | null;
    try {
      bytes = await this.store.getBlob(pointer.object);
    } catch (e) {
      return `cannot read ${pointer.object}: ${(e as Error).message}`;
    }
    if (bytes === null) return `object ${pointer.object} does not exist`;
    const buf = Buffer.from(bytes);
    const sha = createHash('sha256').update(buf).digest('hex');
    if (sha !== pointer.sha256) return `object ${pointer.object} has SHA-256 ${sha}, the pointer says ${pointer.sha256}`;
    try {
      const { files } = await verifyBundle(await readBundle(buf), { keys: [publicOf(key)], ...(signOpts.scope !== undefined ? { scope: signOpts.scope } : {}) });
      const signed = parseRevision(manifestRevision(files));
      if (signed !== pointer.revision) return `the bundle's signed revision is ${signed ?? 'missing'}, the pointer says ${pointer.revision}`;
      return files;
    } catch (e) {
      return `bundle ${pointer.object} does not verify with key ${key.kid}: ${(e as Error).message}`;
    }
  }

  /**
   * The newest stored bundle this key signed, as a pointer (null when there is none). Used when the
   * pointer is missing or untrusted: numbering continues from what was really published, never
   * from 1 and never from a number someone wrote into the KV bucket.
   */
  async newestTrusted(key: SigningKey, signOpts: SignOptions = {}): Promise<BundlePointer | null> {
    const candidates = [];
    for (const info of await this.store.list()) {
      const parsed = info.deleted ? null : parseObjectName(this.pointerKey, info.name);
      if (parsed) candidates.push({ info, revision: parsed.revision });
    }
    candidates.sort((a, b) => b.revision - a.revision);
    for (const { info, revision } of candidates) {
      const bytes = await this.store.getBlob(info.name).catch(() => null);
      if (!bytes) continue;
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      const p: BundlePointer = { revision, object: info.name, sha256, size: bytes.length, published_at: info.mtime, content_sha256: '', kid: key.kid };
      if ((await this.distrust(p, key, signOpts)) === null) {
        const files = await readBundle(Buffer.from(bytes));
        return { ...p, content_sha256: contentDigest(withoutSignature(files)) };
      }
    }
    return null;
  }

  /**
   * Highest revision named by an object in the store. Writing objects takes the control plane's
   * credential, so unlike the pointer (one KV write away) this cannot be made up by whoever may
   * write the pointer; names outside the revision range do not parse and do not count.
   */
  async highestStoredRevision(): Promise<number> {
    let max = 0;
    for (const info of await this.store.list()) {
      const n = info.deleted ? undefined : parseObjectName(this.pointerKey, info.name)?.revision;
      if (n !== undefined && n > max) max = n;
    }
    return max;
  }

  /** Puts `good` back in place of the entry at `seq` (compare-and-set); false when it moved again. */
  async restore(good: BundlePointer, seq: number): Promise<boolean> {
    try {
      if (seq === 0) await this.pointerKv.create(this.pointerKey, encodePointer(good));
      else await this.pointerKv.update(this.pointerKey, encodePointer(good), seq);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Stamps the next revision into the manifest, signs, stores and points at the bundle. On a lost
   * race it takes the next revision and signs again. The next revision follows the highest one
   * stored (and `floor`, what this control plane persisted), never the pointer's claim: a pointer
   * moved back or set to a made-up revision neither repeats revisions nor freezes publishing.
   */
  async publish(files: BundleFiles, key: SigningKey, signOpts: SignOptions = {}, floor = 0): Promise<BundlePointer> {
    return (await this.attempt(files, key, signOpts, floor, false)).pointer;
  }

  /**
   * publish(), unless the pointer already names a bundle this key signed with the same content
   * (revision and signature aside): then that pointer, and `published: false`. Several control
   * planes with one key and the same sources (one per region, docs/multi-region.md) then publish
   * one revision per change whatever the interleaving: the check runs before every attempt, so
   * the one that loses the race finds the winner's bundle instead of numbering the same content
   * again. The content is recomputed from the verified bundle, not read from the pointer's claim.
   */
  async publishOnce(files: BundleFiles, key: SigningKey, signOpts: SignOptions = {}, floor = 0): Promise<{ pointer: BundlePointer; published: boolean }> {
    return this.attempt(files, key, signOpts, floor, true);
  }

  private async attempt(files: BundleFiles, key: SigningKey, signOpts: SignOptions, floor: number, adopt: boolean): Promise<{ pointer: BundlePointer; published: boolean }> {
    const content = contentDigest(files);
    let lastError: Error | null = null;
    for (let attempt = 0; attempt < this.opts.maxAttempts; attempt++) {
      const { seq, pointer: current } = await this.currentEntry();
      if (adopt && current && current.revision >= floor && (await this.holdsContent(current, content, key, signOpts))) {
        return { pointer: current, published: false };
      }
      const revision = nextRevision(Math.max(floor, await this.highestStoredRevision()));
      const signed = await signBundle(withRevision(files, revisionString(revision)), key, signOpts);
      const bytes = await writeBundle(signed);
      try {
        return { pointer: await this.storeAndPoint(bytes, revision, seq, { content_sha256: content, kid: key.kid }), published: true };
      } catch (e) {
        if (!(e instanceof RevisionConflictError)) throw e;
        lastError = e;
      }
    }
    throw new Error(`could not publish after ${this.opts.maxAttempts} attempts: ${lastError?.message ?? 'conflict'}`);
  }

  /** Whether `pointer` names a verified bundle of this key whose content digest is `content`. */
  private async holdsContent(pointer: BundlePointer, content: string, key: SigningKey, signOpts: SignOptions): Promise<boolean> {
    // The pointer's own claim is only a hint that saves reading the bundle when it differs.
    if (pointer.content_sha256 !== content || pointer.kid !== key.kid) return false;
    const files = await this.verified(pointer, key, signOpts);
    return typeof files !== 'string' && contentDigest(files) === content;
  }

  /**
   * Stores already-signed bundle bytes under `revision` and moves the pointer, provided the
   * pointer is still older. Used by publish(), and by tools and tests that publish bytes as-is.
   */
  async publishSigned(bytes: Buffer, revision: number, meta: PublishMeta = {}): Promise<BundlePointer> {
    if (!isRevision(revision)) throw new RangeError(`revision ${revision} is out of range`);
    const { pointer, seq } = await this.currentEntry();
    if (pointer && pointer.revision >= revision) {
      throw new RevisionConflictError(`revision ${revision} is not newer than the current revision ${pointer.revision}`);
    }
    return this.storeAndPoint(bytes, revision, seq, meta);
  }

  private async storeAndPoint(bytes: Buffer, revision: number, seq: number, meta: PublishMeta): Promise<BundlePointer> {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const name = objectName(this.pointerKey, revision, sha256);
    await this.store.putBlob({ name, metadata: { revision: String(revision), sha256 } }, bytes);
    const pointer: BundlePointer = {
      revision, object: name, sha256, size: bytes.length, published_at: new Date().toISOString(),
      content_sha256: meta.content_sha256 ?? '', kid: meta.kid ?? '',
    };
    try {
      if (seq === 0) await this.pointerKv.create(this.pointerKey, encodePointer(pointer));
      else await this.pointerKv.update(this.pointerKey, encodePointer(pointer), seq);
    } catch (e) {
      // Whoever moved the pointer first owns this revision; our object is an orphan, unless the
      // winner signed the very same bytes (same name): then it is theirs and must stay.
      const now = await this.currentEntry().catch(() => null);
      if (now?.pointer?.object !== name) await this.store.delete(name).catch(() => undefined);
      if (now && now.seq !== seq) throw new RevisionConflictError(`pointer moved to revision ${now.pointer?.revision ?? '(deleted)'} while publishing revision ${revision}`);
      throw new Error(`cannot update bundle pointer ${this.pointerKey}: ${(e as Error).message}`);
    }
    await this.prune(revision).catch(() => undefined);
    return pointer;
  }

  /** Deletes bundle objects more than `keep` revisions behind `latest`. Returns the names deleted. */
  async prune(latest: number): Promise<string[]> {
    const prefix = this.pointerKey + '/';
    const deleted: string[] = [];
    if (!isRevision(latest)) return deleted;
    for (const info of await this.store.list()) {
      if (info.deleted || !info.name.startsWith(prefix)) continue;
      const n = parseObjectName(this.pointerKey, info.name)?.revision;
      if (n !== undefined && n <= latest - this.opts.keep) {
        await this.store.delete(info.name);
        deleted.push(info.name);
      }
    }
    return deleted;
  }
}

function publicOf(key: SigningKey): VerificationKey {
  return { alg: key.alg, kid: key.kid, key: key.key.type === 'private' ? createPublicKey(key.key) : key.key };
}

function withoutSignature(files: BundleFiles): BundleFiles {
  return new Map([...files].filter(([p]) => p !== '/.signatures.json'));
}
