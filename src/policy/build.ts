import { createHash } from 'node:crypto';
import { cp, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { runOpa, type OpaRun } from './opa-cli.js';
import { supportedBuiltins } from './builtin-support.js';
import { TOLLGATE_BUILTIN_DECLS } from './builtin-sql.js';
import { toolPath } from '../util/tools.js';
import { listingRules, type ListingRules, type ParsedRegoModule } from './listing-rules.js';

/**
 * `opa build -t wasm` and friends, with the project's entrypoints, strict checks and the set of
 * builtins the WASM evaluation can answer. Errors carry opa's `file:line:col: message` lines with
 * paths as the caller named the directory, so editors and people can jump to them.
 */

export const DECISION_ENTRYPOINT = 'tollgate/authz/decision';
export const ALLOW_ENTRYPOINT = 'tollgate/authz/allow';
export const ENVOY_ENTRYPOINT = 'envoy/authz/allow';
export const MASK_ENTRYPOINT = 'system/log/mask';
/**
 * Generated when a default build has both the decision and the log mask: one evaluation answers
 * both ({"decision": ..., "mask": ...}, each key present when its rule is defined), so a logged
 * call does not parse its input into the WASM and run it a second time for the mask.
 */
export const LOGGED_ENTRYPOINT = 'tollgate_generated/logged/decision_and_mask';
const LOGGED_MODULE = `package tollgate_generated.logged

decision_and_mask["decision"] := data.tollgate.authz.decision

decision_and_mask["mask"] := m if {
	m := data.system.log.mask with input as {"input": input}
}
`;

/** Rules whose presence decides which entrypoints a default build compiles. */
const CANDIDATE_ENTRYPOINTS = [DECISION_ENTRYPOINT, ALLOW_ENTRYPOINT, ENVOY_ENTRYPOINT, MASK_ENTRYPOINT];
const DECIDING_ENTRYPOINTS = [DECISION_ENTRYPOINT, ALLOW_ENTRYPOINT, ENVOY_ENTRYPOINT];

/** Test files are for `opa test`; they never go into the bundle or the WASM. */
export const IGNORED_IN_BUILD = ['*_test.rego'];

export interface PolicyProblem {
  file: string | null;
  line: number | null;
  column: number | null;
  code: string | null;
  message: string;
}

export class PolicyBuildError extends Error {
  constructor(summary: string, readonly problems: PolicyProblem[] = [], readonly output = '') {
    super(problems.length ? `${summary}:\n${problems.map((p) => '  ' + formatProblem(p)).join('\n')}` : summary);
    this.name = 'PolicyBuildError';
  }
}

export function formatProblem(p: PolicyProblem): string {
  const where = p.file ? `${p.file}${p.line !== null ? `:${p.line}` : ''}${p.column !== null ? `:${p.column}` : ''}: ` : '';
  return `${where}${p.code ? `${p.code}: ` : ''}${p.message}`;
}

export interface BuildOptions {
  /** Entrypoints to compile ("a/b/c"); by default every contract rule the policy defines. */
  entrypoints?: string[];
  /** Bundle revision written to /.manifest. */
  revision?: string;
}

async function requireDir(dir: string): Promise<void> {
  let st;
  try {
    st = await stat(dir);
  } catch {
    throw new PolicyBuildError(`policy directory "${dir}" does not exist`);
  }
  if (!st.isDirectory()) throw new PolicyBuildError(`"${dir}" is not a directory: give the directory that holds your .rego files`);
}

/** Rewrites a file named relative to the policy directory into the caller's terms. */
function displayPath(dir: string, file: string): string {
  const rel = file.replace(/^\.\//, '');
  if (rel.startsWith('/')) return rel;
  return dir === '.' ? rel : join(dir, rel);
}

interface OpaJsonError {
  message?: unknown;
  code?: unknown;
  location?: { file?: unknown; row?: unknown; col?: unknown };
}

function problemsFromJson(dir: string, text: string): PolicyProblem[] | null {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return null;
  }
  const errors = (doc as { errors?: unknown }).errors;
  if (!Array.isArray(errors)) return null;
  return errors.map((raw: OpaJsonError) => {
    const loc = raw.location ?? {};
    return {
      file: typeof loc.file === 'string' && loc.file ? displayPath(dir, loc.file) : null,
      line: typeof loc.row === 'number' ? loc.row : null,
      column: typeof loc.col === 'number' ? loc.col : null,
      code: typeof raw.code === 'string' ? raw.code : null,
      message: typeof raw.message === 'string' ? raw.message : JSON.stringify(raw),
    };
  });
}

const PROBLEM_LINE = /^(?:\d+ errors? occurred:\s*)?(.+?\.rego):(\d+)(?::(\d+))?: (?:(rego_[a-z_]+): )?(.*)$/;

/** opa's pretty output ("1 error occurred: a.rego:3: rego_type_error: ..."), line by line. */
function problemsFromText(dir: string, text: string): PolicyProblem[] {
  const out: PolicyProblem[] = [];
  for (const line of text.split('\n').map((l) => l.trim()).filter(Boolean)) {
    const m = PROBLEM_LINE.exec(line);
    if (m) {
      out.push({ file: displayPath(dir, m[1]!), line: Number(m[2]), column: m[3] ? Number(m[3]) : null, code: m[4] ?? null, message: m[5]! });
    } else if (!/^\d+ errors? occurred:?$/.test(line)) {
      out.push({ file: null, line: null, column: null, code: null, message: line.replace(/^error: /, '') });
    }
  }
  return out;
}

/** Adds what to do when a policy calls a builtin the WASM evaluation cannot answer. */
function explainUnsupported(problems: PolicyProblem[], all: ReadonlySet<string>): PolicyProblem[] {
  return problems.map((p) => {
    const m = /undefined function ([\w.]+)/.exec(p.message);
    if (!m || !all.has(m[1]!)) return p;
    return { ...p, message: `${p.message} (${m[1]} is a Rego builtin, but not one Tollgate can evaluate in WebAssembly; see policies/README.md, "Builtins", for the supported list)` };
  });
}

function failure(summary: string, dir: string, run: OpaRun, all: ReadonlySet<string> = new Set()): PolicyBuildError {
  const text = (run.stdout + '\n' + run.stderr).trim();
  // opa writes --format json reports to stdout or stderr depending on the command.
  const problems = problemsFromJson(dir, run.stdout) ?? problemsFromJson(dir, run.stderr) ?? problemsFromText(dir, text);
  return new PolicyBuildError(summary, explainUnsupported(problems, all), text);
}

interface Capabilities {
  builtins: Array<{ name: string; decl?: unknown }>;
  [k: string]: unknown;
}

interface CapabilitySets {
  /** What a policy compiled to WASM may call (checked at build). */
  restricted: string;
  /** Every OPA builtin plus Tollgate's own: for opa test and opa eval, which run tests and tooling in Go. */
  full: string;
  all: ReadonlySet<string>;
}

const capabilitiesCache = new Map<string, Promise<CapabilitySets>>();

/**
 * opa's own capabilities with the builtin list cut down to what Tollgate can evaluate, so a call
 * to, say, http.send fails the build at its file:line instead of every request at run time.
 */
function capabilities(): Promise<CapabilitySets> {
  const key = toolPath('opa');
  let p = capabilitiesCache.get(key);
  if (!p) {
    p = (async () => {
      const run = await runOpa(['capabilities', '--current']);
      if (run.code !== 0) throw new PolicyBuildError(`opa capabilities failed: ${run.stderr.trim() || run.stdout.trim()}`);
      const caps = JSON.parse(run.stdout) as Capabilities;
      const all = new Set(caps.builtins.map((b) => b.name));
      const supported = supportedBuiltins();
      const restricted = [...caps.builtins.filter((b) => supported.has(b.name)), ...TOLLGATE_BUILTIN_DECLS];
      return {
        restricted: JSON.stringify({ ...caps, builtins: restricted }),
        full: JSON.stringify({ ...caps, builtins: [...caps.builtins, ...TOLLGATE_BUILTIN_DECLS] }),
        all,
      };
    })();
    p.catch(() => capabilitiesCache.delete(key));
    capabilitiesCache.set(key, p);
  }
  return p;
}

/**
 * OPA's capabilities plus the declarations of Tollgate's own builtins (tollgate.sql.analyze), as
 * JSON: give it to `opa test`, `opa check` or `opa eval` with --capabilities so they accept
 * policies that call them (`tollgate policy capabilities` prints it).
 */
export async function opaCapabilitiesJson(): Promise<string> {
  return (await capabilities()).full;
}

/** opaCapabilitiesJson() in a file named by its content, written once per process and OPA version. */
export async function opaCapabilitiesFile(): Promise<string> {
  const json = await opaCapabilitiesJson();
  const file = join(tmpdir(), `tollgate-opa-capabilities-${createHash('sha256').update(json).digest('hex').slice(0, 16)}.json`);
  const existing = await readFile(file, 'utf8').catch(() => null);
  if (existing !== json) {
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, json);
    await rename(tmp, file);
  }
  return file;
}

async function withTempDir<T>(fn: (tmp: string) => Promise<T>): Promise<T> {
  const tmp = await mkdtemp(join(tmpdir(), 'tollgate-opa-'));
  try {
    return await fn(tmp);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

function ignoreArgs(patterns: string[]): string[] {
  return patterns.flatMap((p) => ['--ignore', p]);
}

/** `opa check --strict` of the files that go into the WASM, against the supported builtins. */
async function checkForWasm(dir: string, tmp: string): Promise<void> {
  const caps = await capabilities();
  const capsFile = join(tmp, 'capabilities.json');
  await writeFile(capsFile, caps.restricted);
  const run = await runOpa(['check', '--strict', '--format', 'json', '--capabilities', capsFile, ...ignoreArgs(IGNORED_IN_BUILD), '-b', '.'], { cwd: dir });
  if (run.code !== 0) throw failure(`policy check of ${dir} failed`, dir, run, caps.all);
}

const ENTRYPOINT_FORMAT = /^[A-Za-z_][\w-]*(\/[A-Za-z_][\w-]*)*$/;

interface ParsedModule {
  package?: { path?: Array<{ value?: unknown }> };
  rules?: Array<{ head?: { ref?: Array<{ value?: unknown }>; name?: unknown } }>;
}

async function regoFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && e.name.endsWith('.rego') && !e.name.endsWith('_test.rego'))
    .map((e) => join(e.parentPath, e.name));
}

/**
 * Which candidate rules the policy defines, from the parsed modules of the packages that could hold
 * them. (Not `opa deps`: it takes no capabilities, so it cannot compile a policy that calls
 * Tollgate's own builtins.)
 */
async function definedEntrypoints(dir: string, candidates: string[]): Promise<Set<string>> {
  const packages = new Set(candidates.map((c) => c.split('/').slice(0, -1).join('.')));
  const defined = new Set<string>();
  for (const file of await regoFiles(dir)) {
    const pkg = /^package\s+([\w.]+)/m.exec(await readFile(file, 'utf8'))?.[1];
    if (!pkg || !packages.has(pkg)) continue;
    const run = await runOpa(['parse', '--format', 'json', file]);
    if (run.code !== 0) throw failure(`cannot parse ${file}`, dir, run);
    const mod = JSON.parse(run.stdout) as ParsedModule;
    const base = (mod.package?.path ?? []).slice(1).map((t) => String(t.value));
    for (const rule of mod.rules ?? []) {
      const ref = rule.head?.ref?.map((t) => String(t.value)) ?? (typeof rule.head?.name === 'string' ? [rule.head.name] : []);
      const path = [...base, ...ref].join('/');
      if (candidates.includes(path)) defined.add(path);
    }
  }
  return defined;
}

/** The listing rules the policy in `dir` needs (src/policy/listing-rules.ts); often none. */
export async function policyListingRules(dir: string): Promise<ListingRules> {
  const parsed: ParsedRegoModule[] = [];
  for (const file of await regoFiles(dir)) {
    const text = await readFile(file, 'utf8');
    // Only a module with an allow rule that mentions arguments can need a variant.
    if (!/\ballow\b/.test(text) || !text.includes('arguments')) continue;
    const run = await runOpa(['parse', '--format', 'json', '--json-include', 'locations', file]);
    if (run.code !== 0) throw failure(`cannot parse ${file}`, dir, run);
    parsed.push({ file: relative(dir, file), ast: JSON.parse(run.stdout) as unknown });
  }
  return listingRules(parsed);
}

/** The entrypoints a default build compiles, or a clear error if the policy decides nothing. */
async function defaultEntrypoints(dir: string): Promise<string[]> {
  const defined = await definedEntrypoints(dir, CANDIDATE_ENTRYPOINTS);
  if (!DECIDING_ENTRYPOINTS.some((e) => defined.has(e))) {
    throw new PolicyBuildError(
      `the policy in ${dir} defines no decision: write a rule "decision" (or a boolean "allow") in package tollgate.authz, ` +
        'or "allow" in package envoy.authz for opa-envoy-plugin policies (see policies/README.md)',
    );
  }
  return CANDIDATE_ENTRYPOINTS.filter((e) => defined.has(e));
}

/**
 * Compiles a policy directory (an OPA bundle root: rego files, data.json files at their data path)
 * to a WASM bundle and returns its .tar.gz bytes. Test files are left out; scenario YAML files are
 * never loaded (a bundle only reads data from files named data.json/data.yaml).
 */
export async function buildPolicyBundle(dir: string, opts: BuildOptions = {}): Promise<Buffer> {
  await requireDir(dir);
  for (const e of opts.entrypoints ?? []) {
    if (!ENTRYPOINT_FORMAT.test(e)) throw new PolicyBuildError(`entrypoint "${e}" is not a slash-separated rule path such as tollgate/authz/decision`);
  }
  return withTempDir(async (tmp) => {
    await checkForWasm(dir, tmp);
    const entrypoints = opts.entrypoints?.length ? opts.entrypoints : await defaultEntrypoints(dir);
    const logged = !opts.entrypoints?.length && entrypoints.includes(DECISION_ENTRYPOINT) && entrypoints.includes(MASK_ENTRYPOINT);
    if (logged) entrypoints.push(LOGGED_ENTRYPOINT);
    const out = join(tmp, 'bundle.tar.gz');
    const args = [
      'build', '-t', 'wasm', '-b', '--capabilities', join(tmp, 'capabilities.json'), ...ignoreArgs(IGNORED_IN_BUILD),
      ...entrypoints.flatMap((e) => ['-e', e]), '-o', out,
    ];
    if (opts.revision !== undefined) args.push('--revision', opts.revision);
    args.push('.');
    // Generated listing rules go into a copy of the policy: opa build merges several bundle roots
    // only when their manifests declare disjoint roots, which a user's policy directory does not.
    const listing = (await policyListingRules(dir)).modules;
    let root = dir;
    if (listing.length > 0 || logged) {
      root = join(tmp, 'policy');
      await cp(dir, root, { recursive: true });
      await Promise.all(listing.map((m, i) => writeFile(join(root, `tollgate_listing_generated_${i}.rego`), m)));
      if (logged) await writeFile(join(root, 'tollgate_logged_generated.rego'), LOGGED_MODULE);
    }
    const caps = await capabilities();
    const run = await runOpa(args, { cwd: root });
    if (run.code !== 0) throw failure(`opa build of ${dir} failed`, dir, run, caps.all);
    return readFile(out);
  });
}

export interface CheckOptions {
  /** Also check *_test.rego files (with every builtin available, as opa test runs them). Default true. */
  tests?: boolean;
}

/**
 * `opa check --strict`: the policy files against what the WASM can evaluate, and (by default) the
 * whole directory including tests. Throws PolicyBuildError listing every problem.
 */
export async function checkPolicies(dir: string, opts: CheckOptions = {}): Promise<void> {
  await requireDir(dir);
  await withTempDir((tmp) => checkForWasm(dir, tmp));
  if (opts.tests ?? true) {
    const run = await runOpa(['check', '--strict', '--format', 'json', '--capabilities', await opaCapabilitiesFile(), '-b', '.'], { cwd: dir });
    if (run.code !== 0) throw failure(`policy check of ${dir} (with tests) failed`, dir, run);
  }
}

export interface FmtOptions {
  /** Rewrite files in place; otherwise only report which ones are not formatted. */
  write: boolean;
}

export interface FmtResult {
  /** Files that were (write) or would be (list) reformatted, as paths under `dir`. */
  files: string[];
}

/** `opa fmt` over the directory. A file that does not parse is an error, with its location. */
export async function fmtPolicies(dir: string, opts: FmtOptions): Promise<FmtResult> {
  await requireDir(dir);
  const run = await runOpa(['fmt', '--list', '.'], { cwd: dir });
  if (run.code !== 0) throw failure(`opa fmt of ${dir} failed`, dir, run);
  const listed = run.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
  if (opts.write && listed.length > 0) {
    // --list and --write do not combine in opa fmt: list first, then rewrite.
    const w = await runOpa(['fmt', '--write', '.'], { cwd: dir });
    if (w.code !== 0) throw failure(`opa fmt of ${dir} failed`, dir, w);
  }
  return { files: listed.map((f) => displayPath(dir, f)) };
}
