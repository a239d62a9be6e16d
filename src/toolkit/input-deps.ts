import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IGNORED_IN_BUILD, PolicyBuildError } from '../policy/build.js';
import { copyWithStubbedBuiltins } from './host-mocks.js';
import { runOpa } from '../policy/opa-cli.js';
import { expandGlob } from './glob.js';
import type { EntrypointMode } from './scenario-types.js';

/**
 * Which parts of `input` a policy's decision may read, from OPA's own dependency analysis
 * (`opa deps`): each ref is a path into input, cut at the first non-constant part
 * (`input.mcp.arguments[k]` reads all of input.mcp.arguments). Sound but coarse where a policy
 * passes input around whole; `object.get(input, ["a", "b"], d)` is narrowed to input.a.b by a
 * look at the parsed source, since opa deps only sees the bare `input` there.
 */

/** Tokens after "input"; [] means the whole input. */
export type InputRef = string[];

interface Term {
  type?: unknown;
  value?: unknown;
}

function refTokens(ref: Term[]): InputRef | null {
  const [head, ...rest] = ref;
  if (head?.type !== 'var' || head.value !== 'input') return null;
  const out: string[] = [];
  for (const t of rest) {
    if (t.type === 'string' || t.type === 'number') out.push(String(t.value));
    else break;
  }
  return out;
}

/** Input refs in `opa deps --format json` output. */
export function depsInputRefs(doc: unknown): InputRef[] {
  const base = (doc as { base?: unknown }).base;
  if (!Array.isArray(base)) return [];
  return base.map((r) => (Array.isArray(r) ? refTokens(r as Term[]) : null)).filter((r): r is InputRef => r !== null);
}

const isBareInput = (t: Term): boolean =>
  t.type === 'ref' && Array.isArray(t.value) && t.value.length === 1 && (t.value[0] as Term).type === 'var' && (t.value[0] as Term).value === 'input';

function constantPath(t: Term | undefined): string[] | null {
  if (!t) return null;
  if (t.type === 'string' && typeof t.value === 'string') return [t.value];
  if (t.type === 'array' && Array.isArray(t.value)) {
    const parts = (t.value as Term[]).map((x) => (x.type === 'string' || x.type === 'number' ? String(x.value) : null));
    return parts.every((p): p is string => p !== null) ? parts : null;
  }
  return null;
}

function isObjectGet(t: Term): boolean {
  if (t.type !== 'ref' || !Array.isArray(t.value)) return false;
  const [a, b] = t.value as Term[];
  return a?.value === 'object' && b?.value === 'get' && (t.value as Term[]).length === 2;
}

/**
 * Where a parsed module (`opa parse --format json`) uses the bare `input`: the paths of
 * `object.get(input, CONSTANT, _)` calls, and whether any other use leaves it unexplained.
 */
export function bareInputUses(ast: unknown): { paths: InputRef[]; unexplained: boolean } {
  const paths: InputRef[] = [];
  let unexplained = false;
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      node.forEach(visit);
      return;
    }
    if (typeof node !== 'object' || node === null) return;
    const t = node as Term;
    if (t.type === 'call' && Array.isArray(t.value)) {
      const [op, first, second, ...rest] = t.value as Term[];
      if (op && first && isObjectGet(op) && isBareInput(first)) {
        const p = constantPath(second);
        if (p) {
          paths.push(p);
          rest.forEach(visit);
          return;
        }
      }
    }
    if (isBareInput(t)) {
      unexplained = true;
      return;
    }
    for (const v of Object.values(node as Record<string, unknown>)) visit(v);
  };
  visit((ast as { rules?: unknown }).rules ?? []);
  return { paths, unexplained };
}

const ENTRY_RULES: Record<EntrypointMode, string[]> = {
  tollgate: ['data.tollgate.authz.decision', 'data.tollgate.authz.allow'],
  envoy: ['data.envoy.authz.allow'],
};

async function refineBareInput(dir: string): Promise<InputRef[] | null> {
  const files = expandGlob(`${dir.replace(/\/+$/, '')}/**/*.rego`).filter((f) => !/_test\.rego$/.test(f));
  const paths: InputRef[] = [];
  for (const f of files) {
    const r = await runOpa(['parse', '--format', 'json', f]);
    if (r.code !== 0) return null;
    const uses = bareInputUses(JSON.parse(r.stdout));
    if (uses.unexplained) return null;
    paths.push(...uses.paths);
  }
  return paths;
}

/** The input paths the decision of the policy in `dir` may read. */
export async function policyInputRefs(dir: string, mode: EntrypointMode): Promise<InputRef[]> {
  const query = `x := [${ENTRY_RULES[mode].join(', ')}]`;
  // opa deps takes no capabilities file, so it runs on a copy whose calls of Tollgate's own builtins
  // go to a stub (the builtins read only their arguments, which opa deps still sees).
  const tmp = await mkdtemp(join(tmpdir(), 'tollgate-deps-'));
  let r;
  try {
    await copyWithStubbedBuiltins(dir, tmp, (name) => name.endsWith('_test.rego'));
    r = await runOpa(['deps', '--format', 'json', '-b', tmp, ...IGNORED_IN_BUILD.flatMap((p) => ['--ignore', p]), query]);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  if (r.code !== 0) throw new PolicyBuildError(`cannot list what the policy in ${dir} reads: ${(r.stderr || r.stdout).trim().replaceAll(tmp, dir)}`);
  let refs = depsInputRefs(JSON.parse(r.stdout));
  if (refs.some((x) => x.length === 0)) {
    const narrowed = await refineBareInput(dir);
    if (narrowed) refs = [...refs.filter((x) => x.length > 0), ...narrowed];
  }
  const seen = new Set<string>();
  return refs.filter((x) => {
    const k = JSON.stringify(x);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Whether reading `ref` may observe the field at `field` (both as tokens after "input"). */
export function mayRead(ref: InputRef, field: readonly string[]): boolean {
  const n = Math.min(ref.length, field.length);
  for (let i = 0; i < n; i++) if (ref[i] !== field[i]) return false;
  return true;
}
