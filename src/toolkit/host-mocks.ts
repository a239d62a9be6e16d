import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { analyzeSql, loadSqlParser } from '../policy/builtin-sql.js';

/**
 * Tollgate's own builtins (tollgate.sql.analyze) run in the host; OPA's interpreter has no
 * implementation of them. So that `opa eval` (explain, the WASM cross-check, coverage) reaches the
 * same answers, the tooling answers them ahead of time: every string in the inputs is analysed
 * here, with the real parser, and the evaluation mocks the builtin with a lookup of those answers.
 * The analyses use the default size bound; a policy that raises `max_bytes` for texts longer than
 * that gets the "too long" analysis on the interpreter only.
 */

export const MOCK_PACKAGE = 'tollgate_host_mock';
/** File name of the mock module; tooling leaves it out of coverage reports. */
export const MOCK_FILE = 'tollgate-host-mock.rego';

/** The `with` clause that routes the builtin to the mock. */
export const MOCK_WITH = ` with tollgate.sql.analyze as data.${MOCK_PACKAGE}.sql_analyze`;

// The answers live in the module itself: opa eval -b ignores data files given next to a bundle.
const mockModule = (sql: Record<string, unknown>): string => `package ${MOCK_PACKAGE}

sql_analyze(q, _) := sql[q]

sql := ${JSON.stringify(sql)}
`;

/** Every string in a JSON value, iteratively (inputs can be deep), each once. */
function strings(values: readonly unknown[], out: Set<string>): void {
  const stack: unknown[] = [...values];
  while (stack.length) {
    const v = stack.pop();
    if (typeof v === 'string') out.add(v);
    else if (Array.isArray(v)) stack.push(...v);
    else if (typeof v === 'object' && v !== null) stack.push(...Object.values(v));
  }
}

/** Writes the mock module into `dir`; returns the `-d` arguments for opa eval. */
export async function writeHostMocks(dir: string, inputs: readonly unknown[]): Promise<string[]> {
  await loadSqlParser();
  const seen = new Set<string>();
  strings(inputs, seen);
  const sql: Record<string, unknown> = {};
  for (const s of seen) sql[s] = analyzeSql(s);
  const moduleFile = join(dir, MOCK_FILE);
  await writeFile(moduleFile, mockModule(sql));
  return ['-d', moduleFile];
}

/**
 * A copy of a policy directory (tests left out) in which calls of Tollgate's builtins are calls of a
 * stub that reads nothing: for `opa deps`, which takes no capabilities file and so cannot compile
 * them. Same lines, so locations still point at the real files.
 */
export async function copyWithStubbedBuiltins(src: string, dest: string, ignoreTests: (name: string) => boolean): Promise<void> {
  for (const e of await readdir(src, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const from = join(e.parentPath, e.name);
    const to = join(dest, relative(src, from));
    await mkdir(dirname(to), { recursive: true });
    if (e.name.endsWith('.rego')) {
      if (ignoreTests(e.name)) continue;
      await writeFile(to, (await readFile(from, 'utf8')).replaceAll('tollgate.sql.analyze(', `data.${MOCK_PACKAGE}.sql_analyze(`));
    } else if (/^data\.(json|ya?ml)$/.test(e.name) || e.name === '.manifest') {
      await copyFile(from, to);
    }
  }
  await writeFile(join(dest, MOCK_FILE), `package ${MOCK_PACKAGE}\n\nsql_analyze(q, o) := {"query": q, "options": o}\n`);
}
