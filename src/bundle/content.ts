import { createHash } from 'node:crypto';
import { parseYaml } from '../util/yaml-lazy.js';
import type { BundleFiles } from './archive.js';

/** What the engine needs out of an OPA bundle: its manifest, its WASM module and its data. */

export interface BundleManifest {
  revision: string;
  /** Entrypoint → module path, from the manifest's "wasm" list. */
  wasm: Array<{ entrypoint: string; module: string }>;
}

export function readManifest(files: BundleFiles): BundleManifest {
  const raw = files.get('/.manifest');
  if (!raw) return { revision: '', wasm: [] };
  let doc: unknown;
  try {
    doc = JSON.parse(raw.toString('utf8'));
  } catch (e) {
    throw new Error(`bundle /.manifest is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error('bundle /.manifest is not a JSON object');
  const m = doc as { revision?: unknown; wasm?: unknown };
  if (m.revision !== undefined && typeof m.revision !== 'string') throw new Error('bundle /.manifest "revision" is not a string');
  const wasm: BundleManifest['wasm'] = [];
  if (Array.isArray(m.wasm)) {
    for (const w of m.wasm as Array<{ entrypoint?: unknown; module?: unknown }>) {
      if (typeof w?.entrypoint === 'string' && typeof w.module === 'string') wasm.push({ entrypoint: w.entrypoint, module: w.module });
    }
  }
  return { revision: m.revision ?? '', wasm };
}

/**
 * The bundle's WASM module. OPA writes one, /policy.wasm; a manifest naming several modules is
 * something this engine cannot evaluate as one policy, so it is refused rather than half-loaded.
 */
export function wasmModuleBytes(files: BundleFiles, manifest: BundleManifest): Buffer {
  const modules = [...new Set(manifest.wasm.map((w) => (w.module.startsWith('/') ? w.module : '/' + w.module)))];
  if (modules.length > 1) throw new Error(`bundle has ${modules.length} WASM modules (${modules.join(', ')}); Tollgate evaluates bundles built into one module by opa build -t wasm`);
  const path = modules[0] ?? '/policy.wasm';
  const bytes = files.get(path);
  if (!bytes) {
    const has = [...files.keys()].join(', ');
    throw new Error(`bundle has no ${path}: it was not built with \`opa build -t wasm\` (files: ${has || 'none'}); build it with \`tollgate policy build\``);
  }
  return bytes;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep-merges `src` into `dst` at `path`; two files defining the same leaf is an error. */
function mergeAt(dst: Json, path: string[], src: Json, file: string): void {
  let node = dst;
  for (const key of path) {
    const next = node[key];
    if (next === undefined) node[key] = {};
    else if (!isObject(next)) throw new Error(`bundle data conflict at /${path.join('/')} (from ${file})`);
    node = node[key] as Json;
  }
  for (const [k, v] of Object.entries(src)) {
    if (node[k] === undefined) node[k] = v;
    else if (isObject(node[k]) && isObject(v)) mergeAt(dst, [...path, k], v, file);
    else throw new Error(`bundle data conflict at /${[...path, k].join('/')} (from ${file})`);
  }
}

const DATA_FILE = /(^|\/)data\.(json|ya?ml)$/;

export interface BundleData {
  /** The data document as JSON text, ready for the WASM (no JS round trip when there is one file). */
  json: string;
  files: string[];
}

/**
 * The bundle's data document: /data.json at the root plus any data.json / data.yaml below it,
 * each at its directory's path (OPA's bundle layout). Invalid data is a load error, never "{}".
 */
export function bundleData(files: BundleFiles): BundleData {
  const names = [...files.keys()].filter((n) => DATA_FILE.test(n)).sort();
  if (names.length === 0) return { json: '{}', files: [] };
  const parsed = names.map((name) => {
    const text = files.get(name)!.toString('utf8');
    try {
      return { name, value: name.endsWith('.json') ? (JSON.parse(text) as unknown) : (parseYaml(text) as unknown), text };
    } catch (e) {
      throw new Error(`bundle data file ${name} does not parse: ${(e as Error).message}`);
    }
  });
  if (parsed.length === 1 && parsed[0]!.name === '/data.json') {
    if (!isObject(parsed[0]!.value)) throw new Error('bundle data file /data.json must hold a JSON object');
    // Hand the original text on: integers beyond 2^53 stay exact that way.
    return { json: parsed[0]!.text, files: names };
  }
  const root: Json = {};
  for (const p of parsed) {
    const value = p.value ?? {};
    if (!isObject(value)) throw new Error(`bundle data file ${p.name} must hold an object (its keys become data under its directory)`);
    mergeAt(root, p.name.slice(1).split('/').slice(0, -1), value, p.name);
  }
  return { json: JSON.stringify(root), files: names };
}

/** A revision for bundles whose manifest has none: a digest of the module and the data. */
export function contentRevision(wasm: Buffer, dataJson: string): string {
  return 'sha256:' + createHash('sha256').update(wasm).update('\0').update(dataJson).digest('hex').slice(0, 16);
}
