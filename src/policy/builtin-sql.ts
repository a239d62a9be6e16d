import type { HostBuiltin } from './builtin-context.js';
import { objectArg, stringArg } from './builtin-args.js';

/**
 * `tollgate.sql.analyze(query, options)`: what a PostgreSQL query would do, read by PostgreSQL's
 * own grammar (libpg_query compiled to WebAssembly), so a policy can allow-list statement kinds and
 * functions instead of guessing from the text. Quoting (double-quoted identifiers, dollar quotes,
 * E'' escapes, comments) is the real lexer's, which is what the database will run.
 *
 * The result never says "allowed": it describes, and the Rego library (policies/lib/sql.rego)
 * decides. When the query cannot be parsed, is too long, or holds a NUL byte, `ok` is false and
 * `error` says why; a policy must then refuse (the library does).
 *
 * Cost: the input is bounded (default 8 KiB, at most 1 MiB), the parser is an LALR parser
 * (linear in the input) and the tree walk below is iterative and visits each node once. Measured
 * on the shared 2-core dev machine under heavy load: 0.5-0.8 ms for a typical 120-character query,
 * about 20-70 ms for 13 KB; the parser, not the walk, is nearly all of it. So only arguments a
 * policy names as SQL are analysed, and the bound is what limits how long one call can hold
 * the event loop.
 */

export interface SqlAnalysis {
  ok: boolean;
  error: string | null;
  /** Top-level statements in order, as snake_case kinds without "Stmt": select, delete, create_table_as, ... */
  statements: string[];
  /** Statement kinds found inside other statements (CTEs, subqueries), sorted, unique. */
  nested_statements: string[];
  /** Every function called, lower-case, schema-qualified as written (pg_catalog.pg_sleep), sorted, unique. */
  functions: string[];
  /** Constructs that change data or read differently on some servers, sorted, unique (docs/policy-authoring.md). */
  hazards: string[];
}

export const DEFAULT_MAX_SQL_BYTES = 8 * 1024;
const MAX_SQL_BYTES = 1024 * 1024;

type PgQuery = typeof import('libpg-query');
/** The parser, once loaded; null until a policy that calls tollgate.sql.analyze is loaded. */
let pg: PgQuery | null = null;
let loading: Promise<void> | null = null;

/**
 * Loads the parser and its WebAssembly once; policies that call tollgate.sql.analyze need it
 * before their first evaluation (the engine awaits this when a bundle declares the builtin).
 * Imported here rather than at the top: ~20 MB per process that only such policies should pay.
 */
export function loadSqlParser(): Promise<void> {
  if (pg) return Promise.resolve();
  loading ??= import('libpg-query').then(async (m) => { await m.loadModule(); pg = m; })
    .catch((e: unknown) => { loading = null; throw e; });
  return loading;
}

function failed(error: string): SqlAnalysis {
  return { ok: false, error, statements: [], nested_statements: [], functions: [], hazards: [] };
}

/** "CreateTableAsStmt" → "create_table_as". */
export function statementKind(node: string): string {
  return node.slice(0, -'Stmt'.length).replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/([A-Z])([A-Z][a-z])/g, '$1_$2').toLowerCase();
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function funcName(call: Json): string | null {
  const parts = Array.isArray(call.funcname) ? call.funcname : [];
  const names: string[] = [];
  for (const p of parts) {
    const s = isObj(p) && isObj(p.String) ? p.String.sval : undefined;
    if (typeof s !== 'string') return null;
    names.push(s.toLowerCase());
  }
  return names.length ? names.join('.') : null;
}

function statementHazards(key: string, body: Json, hazards: Set<string>): void {
  if (key !== 'SelectStmt') return;
  if (body.intoClause) hazards.add('select_into');
  if (Array.isArray(body.lockingClause) && body.lockingClause.length) hazards.add('locking_clause');
}

/** Visits every node of the parse tree once, without recursion (deep trees cannot overflow the stack). */
function walk(stmts: unknown[], into: { nested: Set<string>; functions: Set<string>; hazards: Set<string> }): void {
  const stack: unknown[] = [...stmts];
  while (stack.length) {
    const v = stack.pop();
    if (Array.isArray(v)) {
      for (const x of v) stack.push(x);
      continue;
    }
    if (!isObj(v)) continue;
    for (const [key, child] of Object.entries(v)) {
      if (key.endsWith('Stmt') && /^[A-Z]/.test(key) && isObj(child)) {
        into.nested.add(statementKind(key));
        statementHazards(key, child, into.hazards);
      }
      if (key === 'FuncCall' && isObj(child)) {
        const name = funcName(child);
        into.functions.add(name ?? '(unnamed)');
      }
      if (typeof child === 'object' && child !== null) stack.push(child);
    }
  }
}

/**
 * Backslashes in standard '...' literals: with standard_conforming_strings off (a server setting)
 * the database reads `\'` as an escaped quote where this parser (and PostgreSQL's default) sees the
 * literal end, so the two would not agree on where statements start. Flagged, so a policy refuses.
 */
function backslashInStandardString(query: string): boolean {
  if (!query.includes('\\')) return false;
  for (const t of pg!.scanSync(query).tokens) {
    if (t.tokenName === 'SCONST' && t.text.startsWith("'") && t.text.includes('\\')) return true;
  }
  return false;
}

export function analyzeSql(query: string, maxBytes = DEFAULT_MAX_SQL_BYTES): SqlAnalysis {
  const bytes = Buffer.byteLength(query, 'utf8');
  if (bytes > maxBytes) return failed(`the query is ${bytes} bytes long, more than the ${maxBytes} bytes that are analysed`);
  // The parser is C: it would stop reading at a NUL and judge only what comes before it.
  if (query.includes('\u0000')) return failed('the query contains a NUL character');
  if (!pg) return failed('the SQL parser is not loaded in this process');
  let tree: { stmts?: Array<{ stmt?: unknown }> };
  try {
    tree = pg.parseSync(query) as typeof tree;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    // PostgreSQL says "memory exhausted" when its parser stack overflows on deep nesting.
    return failed(/memory exhausted/.test(msg) ? 'the query nests too deeply to analyse' : `it does not parse as PostgreSQL: ${msg}`);
  }
  const statements: string[] = [];
  const inner: unknown[] = [];
  const hazards = new Set<string>();
  for (const s of tree.stmts ?? []) {
    if (!isObj(s.stmt)) continue;
    for (const [key, body] of Object.entries(s.stmt)) {
      statements.push(key.endsWith('Stmt') ? statementKind(key) : key.toLowerCase());
      if (isObj(body)) statementHazards(key, body, hazards);
      inner.push(body);
    }
  }
  const found = { nested: new Set<string>(), functions: new Set<string>(), hazards };
  walk(inner, found);
  if (backslashInStandardString(query)) found.hazards.add('backslash_in_string');
  return {
    ok: true, error: null, statements,
    nested_statements: [...found.nested].sort(),
    functions: [...found.functions].sort(),
    hazards: [...found.hazards].sort(),
  };
}

function maxBytesOption(v: unknown): number {
  const o = objectArg(v, 2);
  const m = o.max_bytes;
  if (m === undefined) return DEFAULT_MAX_SQL_BYTES;
  if (typeof m !== 'number' || !Number.isInteger(m) || m < 1 || m > MAX_SQL_BYTES) throw new TypeError(`options.max_bytes must be an integer from 1 to ${MAX_SQL_BYTES}`);
  return m;
}

export function sqlBuiltins(): Record<string, HostBuiltin> {
  return {
    'tollgate.sql.analyze': (q, opts) => analyzeSql(stringArg(q, 1), maxBytesOption(opts)),
  };
}

/**
 * Declarations of Tollgate's own builtins for OPA's capabilities file, so `opa check`, `opa build`
 * and `opa test` know their names and types (OPA has no implementation of them: Rego tests mock
 * them with `with`, and the host answers them in WebAssembly).
 */
export const TOLLGATE_BUILTIN_DECLS: ReadonlyArray<{ name: string; decl: unknown }> = [
  {
    name: 'tollgate.sql.analyze',
    decl: {
      type: 'function',
      args: [
        { type: 'string', name: 'query', description: 'the SQL text' },
        { type: 'object', dynamic: { key: { type: 'string' }, value: { type: 'any' } }, name: 'options', description: '{"max_bytes": n}' },
      ],
      result: { type: 'object', dynamic: { key: { type: 'string' }, value: { type: 'any' } }, name: 'analysis', description: 'ok, error, statements, nested_statements, functions, hazards' },
    },
  },
];
