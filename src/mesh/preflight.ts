import { existsSync, readFileSync, statSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import { BudgetConfigError, parseBudgetConfig } from '../budget/config.js';
import { buildPolicyBundle } from '../policy/build.js';
import { toolPath, type ToolName } from '../util/tools.js';

/**
 * Checks `tollgate up` runs before it starts anything, so that each fatal misconfiguration ends
 * the command within seconds naming its cause and the `up` flag (or install step) that fixes it,
 * instead of a child process failing later under another command's flag names, or never getting
 * ready. Pure helpers first, the I/O at the bottom.
 */

export interface PreflightProblem {
  /** What is wrong, e.g. "--policies /nope does not exist". */
  cause: string;
  /** What to do about it. */
  fix: string;
}

export class PreflightError extends Error {
  constructor(readonly problems: PreflightProblem[]) {
    super(problems.length === 1
      ? `${problems[0]!.cause}\n  fix: ${problems[0]!.fix}`
      : `${problems.length} problems, nothing was started:\n${problems.map((p) => `  - ${p.cause}\n    fix: ${p.fix}`).join('\n')}`);
    this.name = 'PreflightError';
  }
}

/** The external programs a mesh runs: NATS only with the control plane. */
export function requiredTools(controlPlane: boolean): ToolName[] {
  return controlPlane ? ['opa', 'envoy', 'nats-server'] : ['opa', 'envoy'];
}

/** "budgets[0].scope.team" → ['budgets', 0, 'scope', 'team'] (the field names BudgetConfigError uses). */
export function fieldPath(field: string): Array<string | number> {
  const out: Array<string | number> = [];
  for (const part of field.split('.')) {
    const m = /^([^[\]]*)((?:\[\d+\])*)$/.exec(part);
    if (!m) return out;
    if (m[1]) out.push(m[1]);
    for (const idx of m[2]!.matchAll(/\[(\d+)\]/g)) out.push(Number(idx[1]));
  }
  return out;
}

/**
 * The 1-based line of a field in a YAML text, or of its nearest ancestor that exists (a missing
 * field is reported at the object that lacks it); null when the text is not YAML.
 */
export function yamlLineOf(text: string, field: string): number | null {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  if (doc.errors.length) {
    const pos = doc.errors[0]!.pos[0];
    return lc.linePos(pos).line;
  }
  const path = fieldPath(field);
  for (let n = path.length; n >= 1; n--) {
    const node = doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
    if (node && typeof node === 'object' && node.range) return lc.linePos(node.range[0]).line;
  }
  return text.trim() ? 1 : null;
}

/** A budgets-file error as FILE:LINE: problem, with the line found from the field it names. */
export function budgetProblem(file: string, text: string, e: BudgetConfigError): PreflightProblem {
  const line = yamlLineOf(text, e.field);
  const detail = e.message.startsWith(`${file}: `) ? e.message.slice(file.length + 2) : e.message;
  return {
    cause: `--budgets ${file}${line ? `:${line}` : ''}: ${detail}`,
    fix: 'correct that field (the budgets file format is in docs/budgets.md), or leave --budgets out to run without budgets',
  };
}

export interface UpPreflight {
  /** Absolute policy directory (already resolved against the current directory). */
  policies: string;
  /** Absolute budgets file, when --budgets is given. */
  budgets?: string;
  controlPlane: boolean;
}

function checkTools(controlPlane: boolean): PreflightProblem[] {
  const out: PreflightProblem[] = [];
  for (const t of requiredTools(controlPlane)) {
    const env = `TOLLGATE_${t.toUpperCase().replace('-', '_')}`;
    let path: string;
    try {
      path = toolPath(t);
    } catch {
      out.push({ cause: `${t} is not installed (not in .tools/bin, $TOLLGATE_TOOLS or PATH)`, fix: `run \`make deps\` in the Tollgate checkout (installs ${t} into .tools/bin), put ${t} on PATH, or set ${env} to its path` });
      continue;
    }
    if (!existsSync(path)) out.push({ cause: `${t} is set to ${path}, which does not exist`, fix: `point ${env} at the ${t} binary, or unset it to use .tools/bin` });
  }
  return out;
}

function checkPolicyDir(dir: string): PreflightProblem | null {
  let st;
  try {
    st = statSync(dir);
  } catch {
    return { cause: `--policies ${dir} does not exist`, fix: 'pass the directory that holds your .rego files with --policies DIR (tollgate up uses ./policies when the flag is left out)' };
  }
  if (!st.isDirectory()) return { cause: `--policies ${dir} is not a directory`, fix: 'pass the directory that holds your .rego files with --policies DIR' };
  return null;
}

function checkBudgets(file: string): PreflightProblem | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { cause: `--budgets ${file} cannot be read (${code ?? (e as Error).message})`, fix: 'give the path of an existing budgets file (relative paths are taken from the current directory)' };
  }
  try {
    parseBudgetConfig(text, file);
    return null;
  } catch (e) {
    if (e instanceof BudgetConfigError) return budgetProblem(file, text, e);
    throw e;
  }
}

/**
 * Every check `up` can make before starting anything; throws PreflightError listing all the
 * problems found. The policy is compiled as the control plane will (opa build -t wasm), so a policy
 * that does not compile fails here with its file:line instead of leaving the mesh never ready.
 */
export async function preflightUp(o: UpPreflight): Promise<void> {
  const problems = checkTools(o.controlPlane);
  const dirProblem = checkPolicyDir(o.policies);
  if (dirProblem) problems.push(dirProblem);
  if (o.budgets !== undefined) {
    const b = checkBudgets(o.budgets);
    if (b) problems.push(b);
  }
  const opaMissing = problems.some((p) => p.cause.startsWith('opa '));
  if (!dirProblem && !opaMissing) {
    try {
      await buildPolicyBundle(o.policies);
    } catch (e) {
      problems.push({
        cause: `the policy in --policies ${o.policies} does not compile: ${(e as Error).message}`,
        fix: 'fix the file:line above (tollgate policy check DIR shows the same), then run tollgate up again',
      });
    }
  }
  if (problems.length) throw new PreflightError(problems);
}
