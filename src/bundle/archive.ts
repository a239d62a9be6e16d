import { gunzip, gzipSync } from 'node:zlib';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import * as tar from 'tar-stream';

/**
 * An OPA bundle's files, keyed by path with a leading "/" as OPA writes them in the manifest and
 * signature (e.g. "/policy.wasm", "/data.json", "/.manifest", "/.signatures.json").
 */
export type BundleFiles = Map<string, Buffer>;

/** Largest bundle accepted (compressed and uncompressed); a bigger one is refused, not truncated. */
export const MAX_BUNDLE_BYTES = 64 * 1024 * 1024;

function normalise(name: string): string {
  const n = name.replace(/^\.\//, '').replace(/^\/+/, '');
  return '/' + n;
}

const gunzipAsync = promisify(gunzip);

/**
 * Reads a gzipped tar bundle. Rejects corrupt archives and unsafe paths with a clear error.
 * Decompression runs on the libuv pool: authz reads every new bundle while serving, and a
 * synchronous gunzip held its event loop for as long as the bundle took to inflate.
 */
export async function readBundle(gz: Buffer): Promise<BundleFiles> {
  if (gz.length > MAX_BUNDLE_BYTES) throw new Error(`bundle is ${gz.length} bytes, over the ${MAX_BUNDLE_BYTES} limit`);
  let raw: Buffer;
  try {
    raw = await gunzipAsync(gz, { maxOutputLength: MAX_BUNDLE_BYTES });
  } catch (e) {
    throw new Error(`bundle is not a valid gzip archive: ${(e as Error).message}`);
  }
  const files: BundleFiles = new Map();
  const extract = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => { chunks.push(c as Buffer); });
      stream.on('end', () => {
        if (header.type === 'file') {
          const p = normalise(header.name);
          if (p.split('/').includes('..')) {
            reject(new Error(`bundle entry "${header.name}" escapes the bundle root`));
            return;
          }
          files.set(p, Buffer.concat(chunks));
        }
        next();
      });
      stream.on('error', reject);
    });
    extract.on('finish', resolve);
    extract.on('error', (e: Error) => reject(new Error(`bundle is not a valid tar archive: ${e.message}`)));
  });
  Readable.from([raw]).pipe(extract);
  await done;
  if (files.size === 0) throw new Error('bundle is empty or not a tar archive');
  return files;
}

/**
 * Writes files as a gzipped tar in a stable order (so the same files give the same bytes). Entry
 * names keep their leading "/", as `opa build` writes them: OPA resolves the manifest's wasm
 * module paths against entry names literally.
 */
export async function writeBundle(files: BundleFiles): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => { chunks.push(c as Buffer); });
  const finished = new Promise<void>((resolve, reject) => { pack.on('end', resolve); pack.on('error', reject); });
  for (const name of [...files.keys()].sort()) {
    const body = files.get(name)!;
    await new Promise<void>((resolve, reject) => {
      pack.entry({ name: '/' + name.replace(/^\/+/, ''), size: body.length, mtime: new Date(0), mode: 0o644 }, body, (err) => (err ? reject(err) : resolve()));
    });
  }
  pack.finalize();
  await finished;
  return gzipSync(Buffer.concat(chunks));
}
