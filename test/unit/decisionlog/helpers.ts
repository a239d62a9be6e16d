import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JWK } from 'jose';
import { trustedKeysFrom, type TrustedKeys } from '../../../src/decisionlog/checkpoint.js';
import { FileDecisionSink, type FileSinkOptions } from '../../../src/decisionlog/file-sink.js';
import { listLogFiles } from '../../../src/decisionlog/files.js';
import { jwkThumbprint, signingKeyFrom, type SigningKey } from '../../../src/decisionlog/keys.js';
import { verifyLogFiles, type VerifyReport } from '../../../src/decisionlog/verify.js';
import { canonicalize } from '../../../src/decisionlog/canonical.js';
import { parseLine } from '../../../src/decisionlog/lines.js';
import { strict as assert } from 'node:assert';
import { sampleDraft, type SampleOptions } from './fixtures.js';

export const testKey: SigningKey = signingKeyFrom(generateKeyPairSync('ed25519').privateKey);
export const otherKey: SigningKey = signingKeyFrom(generateKeyPairSync('ed25519').privateKey);

export function trusted(key: SigningKey = testKey): TrustedKeys {
  return trustedKeysFrom({ keys: [key.publicJwk] }, (j: JWK) => jwkThumbprint(j as Parameters<typeof jwkThumbprint>[0]));
}

const dirs: string[] = [];
export function tempDir(prefix = 'tg-dlog-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}
export function cleanupTempDirs(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

export function openSink(dir: string, o: Partial<FileSinkOptions> = {}): FileDecisionSink {
  return FileDecisionSink.open({
    dir, maxFileBytes: 1 << 20, checkpointEvery: 5, checkpointIntervalMs: 0, signingKeyPath: join(dir, '..', 'unused.pem'),
    fsync: 'never', signingKey: testKey, warn: () => undefined, ...o,
  });
}

/** Writes n sample records (i from `from`). */
export function fill(sink: FileDecisionSink, n: number, from = 1, o: SampleOptions = {}): void {
  for (let i = from; i < from + n; i++) sink.append(sampleDraft({ ...o, i }));
}

export function fileLines(path: string): string[] {
  const text = readFileSync(path, 'utf8');
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}
export function writeLines(path: string, lines: string[]): void {
  writeFileSync(path, lines.map((l) => l + '\n').join(''));
}

export async function verifyDir(dir: string, keys: TrustedKeys | null = trusted()): Promise<VerifyReport> {
  return verifyLogFiles(listLogFiles(dir), { keys, whole: true });
}

export function errors(r: VerifyReport): VerifyReport['findings'] {
  return r.findings.filter((f) => f.severity === 'error');
}

/** Rewrites the record with this seq in a log file (as an editor would: the chain breaks there). */
export function mutateRecord(path: string, seq: number, edit: (r: Record<string, unknown>) => void): number {
  const lines = fileLines(path);
  const i = lines.findIndex((l) => { const p = parseLine(l); return p.kind === 'record' && p.record.seq === seq; });
  assert.ok(i >= 0, `no record seq ${seq} in ${path}`);
  const r = JSON.parse(lines[i]!) as Record<string, unknown>;
  edit(r);
  lines[i] = canonicalize(r);
  writeLines(path, lines);
  return i + 1;
}
