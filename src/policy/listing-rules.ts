/**
 * Listing rules: what makes a policy's `allow` mean the same for a tools/list as for a call.
 *
 * Tollgate filters a listing by asking the policy, for each listed tool, about a tools/call of it
 * with `input.mcp.listing = true` and no arguments (src/authz/list-policy.ts). A policy author who
 * never heard of that writes `allow if { input.mcp.tool == "add"; input.mcp.arguments.a < 1000 }`
 * and finds `add` hidden from the very callers who may call it: with no arguments the rule fails.
 *
 * The semantics Tollgate promises instead: a tool is listed when the caller could call it with
 * some arguments, hidden when no arguments could unlock it. For each boolean `allow` rule whose
 * body reads the call's arguments, the build adds a listing variant of it: the same rule, in the
 * same package and with the same imports, holding only when `input.mcp.listing` is true, with every
 * expression that reads the arguments left out (and every expression that uses a variable those
 * bound). What is left is everything the rule asks about the caller, the tool and the server, so
 * the variant holds exactly when some arguments might satisfy the rule. Real calls never see the
 * variants (they require `listing`), and are judged with their real arguments.
 *
 * Rules that already mention `input.mcp.listing` are the author's own answer and get no variant,
 * nor do partial rules, functions, defaults and `else` chains: only `allow` says "granted".
 *
 * Pure: works on `opa parse --format json --json-include locations` output and the source text.
 */

export interface ParsedRegoModule {
  /** Path of the file, for messages. */
  file: string;
  /** `opa parse --format json --json-include locations` of it. */
  ast: unknown;
}

export interface ListingVariant {
  /** Where the rule it was made from starts. */
  from: { file: string; row: number };
  /** Expressions left out, as written. */
  dropped: string[];
}

export interface ListingRules {
  /** Generated modules (Rego source), one per source module that needed variants. */
  modules: string[];
  variants: ListingVariant[];
}

type Node = Record<string, unknown>;

const isNode = (v: unknown): v is Node => typeof v === 'object' && v !== null && !Array.isArray(v);

function textOf(node: Node): string {
  const loc = node.location;
  if (!isNode(loc) || typeof loc.text !== 'string') return '';
  return Buffer.from(loc.text, 'base64').toString('utf8');
}

function rowOf(node: Node): number {
  return isNode(node.location) && typeof node.location.row === 'number' ? node.location.row : 0;
}

/** A ref term's path: the head variable's name, then each part ('*' for a non-literal part). */
function refPath(term: Node): string[] | null {
  if (term.type !== 'ref' || !Array.isArray(term.value)) return null;
  return term.value.map((p, i) => {
    if (!isNode(p)) return '*';
    if (i === 0 && p.type === 'var') return String(p.value);
    return p.type === 'string' ? String(p.value) : '*';
  });
}

/** Every node below `v` (the walk is linear in the AST). */
function* walk(v: unknown): Generator<Node> {
  if (Array.isArray(v)) {
    for (const e of v) yield* walk(e);
  } else if (isNode(v)) {
    yield v;
    for (const k of Object.keys(v)) if (k !== 'location') yield* walk(v[k]);
  }
}

function refText(path: string[]): string {
  return path.map((p, i) => (i === 0 ? p : /^[A-Za-z_]\w*$/.test(p) ? `.${p}` : `[${JSON.stringify(p)}]`)).join('');
}

interface Scope {
  /** Names that stand for a path below `input` (imports of input and rules such as `mcp := input.mcp`). */
  inputAliases: Map<string, string[]>;
  /** Names that are not local variables: input, data, imports and the module's rules. */
  globals: Set<string>;
}

const ARGUMENT_PATHS = [['input', 'mcp', 'arguments'], ['input', 'mcp', 'params', 'arguments']];

function startsWith(path: string[], prefix: string[]): boolean {
  return prefix.every((p, i) => path[i] === p);
}

function resolved(path: string[], scope: Scope): string[] {
  const alias = scope.inputAliases.get(path[0] ?? '');
  return alias ? [...alias, ...path.slice(1)] : path;
}

/**
 * Whether an expression reads the call's arguments: a ref into `input.mcp.arguments` (or
 * `params.arguments`), directly or through an alias, or the whole `input.mcp` / `input.mcp.params`
 * next to the string "arguments" (as in `object.get(input.mcp, "arguments", {})`).
 */
function readsArguments(expr: unknown, scope: Scope): boolean {
  let whole = false;
  let argumentsString = false;
  for (const n of walk(expr)) {
    if (n.type === 'string' && n.value === 'arguments') argumentsString = true;
    const raw = refPath(n);
    const path = raw ? resolved(raw, scope) : n.type === 'var' ? resolved([String(n.value)], scope) : null;
    if (!path || path[0] !== 'input') continue;
    if (ARGUMENT_PATHS.some((p) => startsWith(path, p))) return true;
    if (path.length <= 2 || (path.length === 3 && path[2] === 'params' && path[1] === 'mcp')) whole = true;
  }
  return whole && argumentsString;
}

function readsListing(expr: unknown, scope: Scope): boolean {
  for (const n of walk(expr)) {
    const raw = refPath(n);
    if (raw && startsWith(resolved(raw, scope), ['input', 'mcp', 'listing'])) return true;
  }
  return false;
}

/** The operator or function of an expression or call (`lt` in `a < b`, `count` in `count(x)`): not a variable. */
function callees(expr: unknown): Set<Node> {
  const out = new Set<Node>();
  for (const n of walk(expr)) {
    const head = Array.isArray(n.terms) ? n.terms[0] : n.type === 'call' && Array.isArray(n.value) ? n.value[0] : undefined;
    if (isNode(head) && Array.isArray(head.value)) {
      out.add(head);
      for (const part of head.value) if (isNode(part)) out.add(part);
    }
  }
  return out;
}

/** Variables an expression mentions, without operators and function names. */
function varsOf(expr: unknown): Set<string> {
  const skip = callees(expr);
  const out = new Set<string>();
  for (const n of walk(expr)) if (n.type === 'var' && typeof n.value === 'string' && !skip.has(n)) out.add(n.value);
  return out;
}

function scopeOf(ast: Node): Scope {
  const inputAliases = new Map<string, string[]>();
  const globals = new Set<string>(['input', 'data']);
  for (const imp of Array.isArray(ast.imports) ? ast.imports : []) {
    if (!isNode(imp) || !isNode(imp.path)) continue;
    const path = refPath(imp.path) ?? (imp.path.type === 'var' ? [String(imp.path.value)] : null);
    if (!path) continue;
    const alias = typeof imp.alias === 'string' && imp.alias ? imp.alias : path[path.length - 1]!;
    globals.add(alias);
    if (path[0] === 'input') inputAliases.set(alias, path);
  }
  for (const rule of Array.isArray(ast.rules) ? ast.rules : []) {
    if (!isNode(rule) || !isNode(rule.head)) continue;
    const value = rule.head.value;
    const name = rule.head.name;
    if (typeof name === 'string') globals.add(name);
    const path = isNode(value) ? refPath(value) : null;
    // `mcp := input.mcp`: a constant that only names part of the input.
    if (typeof name === 'string' && path && path[0] === 'input' && !path.includes('*') && !rule.head.args) inputAliases.set(name, path);
  }
  return { inputAliases, globals };
}

function importLines(ast: Node): string[] {
  const lines: string[] = [];
  for (const imp of Array.isArray(ast.imports) ? ast.imports : []) {
    if (!isNode(imp) || !isNode(imp.path)) continue;
    const path = refPath(imp.path) ?? (imp.path.type === 'var' ? [String(imp.path.value)] : null);
    if (!path || path[0] === 'future' || (path[0] === 'rego' && path[1] === 'v1')) continue;
    const alias = typeof imp.alias === 'string' && imp.alias ? ` as ${imp.alias}` : '';
    lines.push(`import ${refText(path)}${alias}`);
  }
  return lines;
}

/** A boolean `allow` rule a variant can be made of. */
function isGrantingAllow(rule: Node): boolean {
  const head = rule.head;
  if (!isNode(head) || head.name !== 'allow' || rule.default === true || rule.else !== undefined || head.args !== undefined || head.key !== undefined) return false;
  if (Array.isArray(head.ref) && head.ref.length !== 1) return false;
  const value = head.value;
  return value === undefined || (isNode(value) && value.type === 'boolean' && value.value === true);
}

/** The listing variants of one parsed module, or null when it needs none. */
function variantsOf(mod: ParsedRegoModule): { module: string; variants: ListingVariant[] } | null {
  if (!isNode(mod.ast) || !isNode(mod.ast.package)) return null;
  const ast = mod.ast;
  const terms = Array.isArray(mod.ast.package.path) ? mod.ast.package.path : [];
  const pkg = terms.map((p) => (isNode(p) ? String(p.value) : '*'));
  if (pkg[0] !== 'data' || pkg.length < 2 || pkg.includes('*')) return null;
  const scope = scopeOf(ast);
  const rules: string[] = [];
  const variants: ListingVariant[] = [];
  for (const rule of Array.isArray(ast.rules) ? ast.rules : []) {
    if (!isNode(rule) || !isGrantingAllow(rule)) continue;
    const body = (Array.isArray(rule.body) ? rule.body : []).filter(isNode);
    if (body.some((e) => readsListing(e, scope)) || !body.some((e) => readsArguments(e, scope))) continue;
    // Drop what reads the arguments, then whatever uses a variable a dropped expression mentions,
    // until nothing changes (bounded by the number of expressions).
    // A variable is tainted when a dropped expression is where it first appears (binds it), so a
    // condition written before, such as `limit := data.limits[input.mcp.tool]`, stays.
    const vars = body.map(varsOf);
    const first = new Map<string, number>();
    vars.forEach((vs, i) => { for (const v of vs) if (!first.has(v)) first.set(v, i); });
    const dropped = new Set<Node>();
    const tainted = new Set<string>();
    for (let changed = true; changed;) {
      changed = false;
      body.forEach((e, i) => {
        if (dropped.has(e)) return;
        if (!readsArguments(e, scope) && ![...vars[i]!].some((v) => tainted.has(v))) return;
        dropped.add(e);
        for (const v of vars[i]!) if (!scope.globals.has(v) && v !== '_' && first.get(v) === i) tainted.add(v);
        changed = true;
      });
    }
    const kept = body.filter((e) => !dropped.has(e)).map(textOf);
    if (kept.some((t) => t === '')) continue; // no source text to rebuild from: leave the rule alone
    const from = { file: mod.file, row: rowOf(rule) };
    variants.push({ from, dropped: body.filter((e) => dropped.has(e)).map(textOf) });
    rules.push([
      `# Listing variant of the allow rule at ${mod.file}:${from.row} (see docs/policy-input.md, "Listings").`,
      'allow if {',
      '\tinput.mcp.listing == true',
      ...kept.map((t) => `\t${t.replace(/\n/g, '\n\t')}`),
      '}',
    ].join('\n'));
  }
  if (rules.length === 0) return null;
  const header = [`package ${refText(pkg.slice(1))}`, '', 'import rego.v1', ...importLines(ast), ''];
  return { module: `${[...header, ...rules].join('\n')}\n`, variants };
}

export function listingRules(modules: ParsedRegoModule[]): ListingRules {
  const out: ListingRules = { modules: [], variants: [] };
  for (const m of modules) {
    const v = variantsOf(m);
    if (!v) continue;
    out.modules.push(v.module);
    out.variants.push(...v.variants);
  }
  return out;
}
