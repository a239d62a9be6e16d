import { createHash } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { writeBundle, type BundleFiles } from '../policy/bundle.js';
import type { SigningKey } from './keys.js';
import { contentDigest, withRevision } from './manifest.js';
import {
  DEFAULT_KV_BUCKET, DEFAULT_OBJECT_BUCKET, DEFAULT_POINTER_KEY,
  encodePointer, objectName, parsePointer, revisionString, type BundlePointer,
} from './pointer.js';
import { signBundle, type SignOptions } from './sign.js';

export interface PublisherOptions {
  objectBucket?: string;
  kvBucket?: string;
  /** Pointer key, one per policy set. */
  pointerKey?: string;
  /** Bundle objects kept per policy set (older ones are deleted after a publish). */
  keep?: number;
  /** Attempts when another publisher wins the race for a revision. */
  maxAttempts?: number;
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
    private readonly kv: KV,
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
    };
    const kv = await new Kvm(nc).create(opts.kvBucket, { history: 10, description: 'Tollgate policy bundle pointers' });
    const store = await new Objm(nc).create(opts.objectBucket, { description: 'Tollgate signed policy bundles' });
    return new BundlePublisher(kv, store, opts);
  }

  private async currentEntry(): Promise<{ pointer: BundlePointer | null; seq: number }> {
    const e: KvEntry | null = await this.kv.get(this.pointerKey);
    if (!e || e.operation !== 'PUT') return { pointer: null, seq: e?.revision ?? 0 };
    return { pointer: parsePointer(e.value), seq: e.revision };
  }

  /** The pointer in force, or null before the first publish. */
  async current(): Promise<BundlePointer | null> {
    return (await this.currentEntry()).pointer;
  }

  /** Highest revision among stored objects, so a lost pointer never lets revisions restart at 1. */
  private async highestStoredRevision(): Promise<number> {
    let max = 0;
    const prefix = this.pointerKey + '/';
    for (const info of await this.store.list()) {
      if (info.deleted || !info.name.startsWith(prefix)) continue;
      const n = Number(info.name.slice(prefix.length).split('-')[0]);
      if (Number.isSafeInteger(n) && n > max) max = n;
    }
    return max;
  }

  /**
   * Stamps the next revision into the manifest, signs, stores and points at the bundle. On a lost
   * race it takes the next revision and signs again.
   */
  async publish(files: BundleFiles, key: SigningKey, signOpts: SignOptions = {}): Promise<BundlePointer> {
    const content = contentDigest(files);
    let lastError: Error | null = null;
    for (let attempt = 0; attempt < this.opts.maxAttempts; attempt++) {
      const { pointer, seq } = await this.currentEntry();
      const base = pointer ? pointer.revision : await this.highestStoredRevision();
      const revision = base + 1;
      const signed = await signBundle(withRevision(files, revisionString(revision)), key, signOpts);
      const bytes = await writeBundle(signed);
      try {
        return await this.storeAndPoint(bytes, revision, seq, { content_sha256: content, kid: key.kid });
      } catch (e) {
        if (!(e instanceof RevisionConflictError)) throw e;
        lastError = e;
      }
    }
    throw new Error(`could not publish after ${this.opts.maxAttempts} attempts: ${lastError?.message ?? 'conflict'}`);
  }

  /**
   * Stores already-signed bundle bytes under `revision` and moves the pointer, provided the
   * pointer is still older. Used by publish(), and by tools and tests that publish bytes as-is.
   */
  async publishSigned(bytes: Buffer, revision: number, meta: PublishMeta = {}): Promise<BundlePointer> {
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
      if (seq === 0) await this.kv.create(this.pointerKey, encodePointer(pointer));
      else await this.kv.update(this.pointerKey, encodePointer(pointer), seq);
    } catch (e) {
      // Whoever moved the pointer first owns this revision; our object is an orphan.
      await this.store.delete(name).catch(() => undefined);
      const now = await this.currentEntry().catch(() => null);
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
    for (const info of await this.store.list()) {
      if (info.deleted || !info.name.startsWith(prefix)) continue;
      const n = Number(info.name.slice(prefix.length).split('-')[0]);
      if (Number.isSafeInteger(n) && n <= latest - this.opts.keep) {
        await this.store.delete(info.name);
        deleted.push(info.name);
      }
    }
    return deleted;
  }
}
