import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createPolicyCommand } from '../../../src/cli/policy.js';

/** Shared by the policy toolkit tests: the CLI with captured output, and scratch policy directories. */

export const REPO_POLICIES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'policies');

export interface Ran {
  code: number;
  out: string;
  err: string;
}

export async function policy(argv: string[], now = new Date()): Promise<Ran> {
  let out = '';
  let err = '';
  const cmd = createPolicyCommand({ out: (s) => { out += s; }, err: (s) => { err += s; }, now: () => now });
  const code = await cmd.run(argv);
  return { code, out, err };
}

const made: string[] = [];

export function scratch(prefix = 'tg-toolkit-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  return d;
}

export function cleanup(): void {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** Writes files (paths relative to dir). */
export function write(dir: string, files: Record<string, string>): string {
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

/** A copy of the example policies (without their scenarios), to edit. */
export function copyOfPolicies(): string {
  const dir = join(scratch(), 'policies');
  cpSync(REPO_POLICIES, dir, { recursive: true, filter: (src) => !src.includes(`${join(REPO_POLICIES, 'scenarios')}`) });
  return dir;
}
