import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import type { BundleFiles } from './archive.js';
import { fileDigest, isDigestAlgorithm, DIGEST_ALGORITHMS } from './digest.js';
import type { VerificationKey } from './keys.js';
import { SIGNATURES_PATH, type SignaturePayload, type SignedFile } from './sign.js';
import { isObject } from '../util/object.js';

/** Why a bundle was refused; `problems` lists each file-level finding. */
export class BundleVerificationError extends Error {
  constructor(readonly problems: string[]) {
    super(BundleVerificationError.summarise(problems));
    this.name = 'BundleVerificationError';
  }

  private static summarise(problems: string[]): string {
    const shown = problems.slice(0, 5).join('; ');
    return problems.length > 5 ? `${shown}; and ${problems.length - 5} more` : shown;
  }
}

export interface VerifyOptions {
  /** Keys the bundle may be signed with, by key id. */
  keys: readonly VerificationKey[];
  /** When set, the signature's `scope` claim must equal it (OPA's `scope`). */
  scope?: string;
}

export interface VerifiedBundle {
  /** The bundle without `/.signatures.json`: exactly the files the signature covers. */
  files: BundleFiles;
  kid: string;
  payload: SignaturePayload;
}

function fail(problem: string): never {
  throw new BundleVerificationError([problem]);
}

/** Extracts the one JWT from `.signatures.json`, refusing anything else precisely. */
function signatureToken(files: BundleFiles): string {
  const raw = files.get(SIGNATURES_PATH);
  if (!raw) fail('bundle is not signed: /.signatures.json is missing');
  let doc: unknown;
  try {
    doc = JSON.parse(raw.toString('utf8'));
  } catch (e) {
    fail(`/.signatures.json is not valid JSON: ${(e as Error).message}`);
  }
  if (!isObject(doc) || !Array.isArray(doc.signatures)) fail('/.signatures.json must be {"signatures": ["<JWT>"]}');
  if (doc.signatures.length !== 1) fail(`/.signatures.json holds ${doc.signatures.length} signatures; exactly one is supported`);
  const jwt: unknown = doc.signatures[0];
  if (typeof jwt !== 'string' || jwt.split('.').length !== 3) fail('/.signatures.json: the signature is not a compact JWT');
  return jwt;
}

function chooseKey(jwt: string, keys: readonly VerificationKey[]): VerificationKey {
  let headerKid: string | undefined;
  let payloadKid: unknown;
  let alg: unknown;
  try {
    const header = decodeProtectedHeader(jwt);
    headerKid = header.kid;
    alg = header.alg;
    payloadKid = decodeJwt(jwt).keyid;
  } catch (e) {
    fail(`/.signatures.json: the signature is not a well-formed JWT: ${(e as Error).message}`);
  }
  if (payloadKid !== undefined && typeof payloadKid !== 'string') fail('/.signatures.json: "keyid" must be a string');
  if (headerKid !== undefined && payloadKid !== undefined && headerKid !== payloadKid) {
    fail(`/.signatures.json: header kid "${headerKid}" and payload keyid "${payloadKid}" disagree`);
  }
  const kid = headerKid ?? payloadKid;
  if (keys.length === 0) fail('no verification keys are configured, so no signed bundle can be accepted');
  let key: VerificationKey | undefined;
  if (kid === undefined) {
    if (keys.length !== 1) fail(`the signature names no key id and ${keys.length} keys are configured; sign with a kid`);
    key = keys[0];
  } else {
    key = keys.find((k) => k.kid === kid);
    if (!key) fail(`bundle is signed with key id "${kid}", which is not a configured verification key (configured: ${keys.map((k) => k.kid).join(', ')})`);
  }
  if (alg !== key!.alg) fail(`the signature uses alg ${String(alg)} but key "${key!.kid}" is a ${key!.alg} key`);
  return key!;
}

function signedFiles(payload: Record<string, unknown>): SignedFile[] {
  if (!Array.isArray(payload.files)) fail('signature payload has no "files" list');
  return payload.files.map((f, i) => {
    if (!isObject(f) || typeof f.name !== 'string' || typeof f.hash !== 'string' || typeof f.algorithm !== 'string') {
      fail(`signature payload: files[${i}] must have string "name", "hash" and "algorithm"`);
    }
    return { name: f.name, hash: f.hash, algorithm: f.algorithm };
  });
}

/** Bundle paths are "/x"; signatures name them "x" (opa sign) and sometimes "/x" or "./x". */
function normalName(name: string): string {
  return '/' + name.replace(/^\.\//, '').replace(/^\/+/, '');
}

/**
 * Checks the signature with the configured keys, then every file against the signed list: no
 * file changed, added or missing. Returns the bundle without the signature file; throws
 * BundleVerificationError naming each problem otherwise.
 */
export async function verifyBundle(files: BundleFiles, opts: VerifyOptions): Promise<VerifiedBundle> {
  const jwt = signatureToken(files);
  const key = chooseKey(jwt, opts.keys);
  let payload: Record<string, unknown>;
  try {
    payload = (await jwtVerify(jwt, key.key, { algorithms: [key.alg] })).payload;
  } catch (e) {
    fail(`bundle signature does not verify with key "${key.kid}" (${key.alg}): ${(e as Error).message}`);
  }
  if (opts.scope !== undefined && payload.scope !== opts.scope) {
    fail(`bundle signature scope is ${payload.scope === undefined ? 'unset' : JSON.stringify(payload.scope)}, expected ${JSON.stringify(opts.scope)}`);
  }

  const signed = signedFiles(payload);
  const listed = new Map<string, SignedFile>();
  const problems: string[] = [];
  for (const f of signed) {
    const p = normalName(f.name);
    if (p === SIGNATURES_PATH) continue;
    if (listed.has(p)) problems.push(`${p} is listed twice in the signature`);
    listed.set(p, f);
  }

  const out: BundleFiles = new Map();
  for (const [path, body] of files) {
    if (path === SIGNATURES_PATH) continue;
    // Authz verifies while it serves: one file's hash at a time, with the event loop free to
    // answer requests in between, so the longest pause is one file's, not the bundle's.
    await yieldToLoop();
    out.set(path, body);
    const entry = listed.get(path);
    if (!entry) {
      problems.push(`${path} is in the bundle but not covered by its signature (file added)`);
      continue;
    }
    listed.delete(path);
    if (!isDigestAlgorithm(entry.algorithm)) {
      problems.push(`${path}: digest algorithm "${entry.algorithm}" is not accepted (use ${DIGEST_ALGORITHMS.join(', ')})`);
      continue;
    }
    let actual: string;
    try {
      actual = fileDigest(path, body, entry.algorithm);
    } catch (e) {
      problems.push((e as Error).message);
      continue;
    }
    if (actual !== entry.hash.toLowerCase()) {
      problems.push(`${path}: ${entry.algorithm} digest mismatch (signed ${entry.hash}, bundle has ${actual}): the file was changed after signing`);
    }
  }
  for (const p of listed.keys()) problems.push(`${p} is covered by the signature but missing from the bundle (file removed)`);
  if (problems.length > 0) throw new BundleVerificationError(problems);
  const result: SignaturePayload = { files: signed, keyid: key.kid };
  if (typeof payload.scope === 'string') result.scope = payload.scope;
  if (typeof payload.iat === 'number') result.iat = payload.iat;
  return { files: out, kid: key.kid, payload: result };
}
