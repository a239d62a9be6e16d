import { createHash } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';

/**
 * Reads the bundle object store (a JetStream object store: meta messages on `$O.<b>.M.<name>`,
 * chunks on `$O.<b>.C.<nuid>`) without creating a consumer.
 *
 * The object-store client lists with a watch and fetches with a push consumer: two ordered
 * consumers per sidecar per publish, and in a cluster each one is a proposal through the meta
 * leader. With a thousand sidecars that made every publish thousands of proposals at once
 * (docs/scaling.md). Here a listing is one stream info (subject counts under the meta prefix) and
 * a fetch is single-message gets: direct gets, which any replica answers, with the stream leader
 * asked when a replica has not caught up yet.
 */

/** What the object store records for one object (the fields a bundle reader needs). */
export interface StoredObjectMeta {
  name: string;
  nuid: string;
  size: number;
  chunks: number;
  /** `SHA-256=<base64>` of the whole object, as the object store writes it. */
  digest: string;
  mtime: string;
  deleted: boolean;
}

/** One stored message, from a direct get or the stream leader's get. */
interface Got { seq: number; data: Uint8Array }

/** The object store's name encoding for subjects: URL-safe base64 with padding. */
export function metaToken(name: string): string {
  return Buffer.from(name, 'utf8').toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
}

function nameOf(token: string): string | null {
  if (!/^[A-Za-z0-9_-]+=*$/.test(token)) return null;
  return Buffer.from(token, 'base64url').toString('utf8');
}

function parseMeta(data: Uint8Array, where: string): StoredObjectMeta {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(data).toString('utf8'));
  } catch (e) {
    throw new Error(`${where}: object meta is not JSON: ${(e as Error).message}`);
  }
  if (typeof v !== 'object' || v === null) throw new Error(`${where}: object meta is not an object`);
  const o = v as Record<string, unknown>;
  const str = (k: string): string => (typeof o[k] === 'string' ? o[k] : '');
  const num = (k: string): number => (typeof o[k] === 'number' && Number.isInteger(o[k]) && o[k] >= 0 ? o[k] : -1);
  const meta: StoredObjectMeta = {
    name: str('name'), nuid: str('nuid'), size: num('size'), chunks: num('chunks'),
    digest: str('digest'), mtime: str('mtime'), deleted: o.deleted === true,
  };
  if (!meta.deleted && (meta.nuid === '' || meta.size < 0 || meta.chunks < 0 || !meta.digest.startsWith('SHA-256='))) {
    throw new Error(`${where}: object meta lacks nuid, size, chunks or a SHA-256 digest`);
  }
  return meta;
}

export class BundleObjectReader {
  private readonly stream: string;

  private constructor(private readonly jsm: JetStreamManager, readonly bucket: string) {
    this.stream = `OBJ_${bucket}`;
  }

  /** Opens the bucket (fails when its stream does not exist): authz never creates it. */
  static async open(nc: NatsConnection, bucket: string): Promise<BundleObjectReader> {
    if (!/^[A-Za-z0-9_-]+$/.test(bucket)) throw new Error(`invalid object store bucket name ${JSON.stringify(bucket)}`);
    const jsm = await jetstreamManager(nc, { checkAPI: false });
    const reader = new BundleObjectReader(jsm, bucket);
    await jsm.streams.info(reader.stream);
    return reader;
  }

  /** Names of every object with a meta record (deleted ones included: their meta says so). */
  async names(): Promise<string[]> {
    const prefix = `$O.${this.bucket}.M.`;
    const si = await this.jsm.streams.info(this.stream, { subjects_filter: `${prefix}>` });
    const out: string[] = [];
    for (const subject of Object.keys(si.state.subjects ?? {})) {
      const name = subject.startsWith(prefix) ? nameOf(subject.slice(prefix.length)) : null;
      if (name !== null) out.push(name);
    }
    return out;
  }

  /** The newest meta record of one object; null when there is none. */
  async meta(name: string): Promise<StoredObjectMeta | null> {
    const subject = `$O.${this.bucket}.M.${metaToken(name)}`;
    const m = await this.getMsg({ last_by_subj: subject });
    return m ? parseMeta(m.data, `${this.bucket}/${name}`) : null;
  }

  /**
   * The object's bytes, or null when it does not exist or is deleted. The chunks are checked
   * against the digest and size the meta record gives; a mismatch is an error, not null.
   */
  async get(name: string): Promise<Uint8Array | null> {
    const meta = await this.meta(name);
    if (!meta || meta.deleted) return null;
    const subject = `$O.${this.bucket}.C.${meta.nuid}`;
    const parts: Uint8Array[] = [];
    let total = 0;
    let seq = 0;
    for (let i = 0; i < meta.chunks; i++) {
      const m = await this.getMsg({ seq: seq + 1, next_by_subj: subject });
      if (!m) throw new Error(`${this.bucket}/${name}: chunk ${i + 1} of ${meta.chunks} is missing`);
      seq = m.seq;
      parts.push(m.data);
      total += m.data.length;
    }
    const bytes = Buffer.concat(parts, total);
    if (bytes.length !== meta.size) throw new Error(`${this.bucket}/${name}: ${bytes.length} bytes read, meta says ${meta.size}`);
    const want = Buffer.from(meta.digest.slice('SHA-256='.length), 'base64');
    const got = createHash('sha256').update(bytes).digest();
    if (!got.equals(want)) throw new Error(`${this.bucket}/${name}: content does not match its SHA-256 digest`);
    return bytes;
  }

  /**
   * A direct get (any replica answers). "Not found" from a replica may only mean it lags behind
   * the leader right after a publish, so the leader is asked before saying the message is not there.
   */
  private async getMsg(q: { last_by_subj: string } | { seq: number; next_by_subj: string }): Promise<Got | null> {
    const d = await this.jsm.direct.getMessage(this.stream, q);
    if (d) return { seq: d.seq, data: d.data };
    const m = await this.jsm.streams.getMessage(this.stream, q);
    return m ? { seq: m.seq, data: m.data } : null;
  }
}
