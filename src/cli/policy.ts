import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import type { RecordFilter } from '../decisionlog/query.js';
import { buildPolicyBundle, checkPolicies, fmtPolicies, opaCapabilitiesJson, policyListingRules, PolicyBuildError } from '../policy/build.js';
import { readBundle } from '../bundle/archive.js';
import { readManifest } from '../bundle/content.js';
import { loadPolicyFromDir } from '../policy/engine.js';
import type { ToolAnnotations } from '../contract/policy.js';
import { CallRefusedError, type CallSpec } from '../toolkit/call-input.js';
import { explainCall } from '../toolkit/explain.js';
import type { TraceMode } from '../toolkit/interpreter.js';
import { defaultScenarioGlob, testPolicies } from '../toolkit/policy-test.js';
import { renderExplain } from '../toolkit/render-explain.js';
import { renderReplay } from '../toolkit/render-replay.js';
import { renderTestReport } from '../toolkit/render-test.js';
import { logSource, replayDecisions, DEFAULT_STREAM, DEFAULT_SUBJECT_PREFIX } from '../toolkit/replay-run.js';
import type { EntrypointMode, RequestSpec } from '../toolkit/scenario-types.js';
import { parseCommandArgs, timeFlag } from './args.js';
import { showRevision } from './policy-show.js';
import { UsageError, type Command } from './types.js';
import { dispatchTable, STDIO, type CommandIo } from './subcommands.js';

/** `tollgate policy`: build, check, fmt, test, explain, replay. Flags and output; the work is in src/toolkit. */

export interface PolicyIo extends CommandIo {
  now: () => Date;
}

const DEFAULT_DIR = 'policies';

const HELP: Record<string, string> = {
  policy: `Usage: tollgate policy <subcommand> [flags]

The policy author's loop: write Rego in policies/, check it, test it on the compiled WASM (what
the mesh runs), ask why a call is denied, and see what an edit would change in recorded traffic.

  build     compile DIR to a WASM bundle (opa build -t wasm, strict checks)
  check     opa check --strict, against the builtins Tollgate can evaluate
  fmt       opa fmt: list, check or rewrite the formatting of DIR
  test      opa test, then scenario files (YAML) on the compiled WASM; coverage
  explain   one call: the decision, its reasons, and the rules that contributed
  replay    re-decide recorded decisions under a new policy: what would change
  capabilities  print OPA's capabilities JSON with Tollgate's own builtins declared (for opa test/check/eval)
  show      what a published revision contained: its content hash and sources (--revision N)

Run \`tollgate policy <subcommand> --help\` for its flags. Guide: docs/policy-authoring.md.
`,
  build: `Usage: tollgate policy build [DIR] [-o FILE] [--revision REV] [-e PATH]...

Checks DIR strictly (opa check --strict, with only the builtins Tollgate evaluates in WASM) and
compiles it with opa build -t wasm into an OPA bundle. *_test.rego files are left out. Errors
point at file:line.

  DIR                  policy directory (default ${DEFAULT_DIR})
  -o, --output FILE    where to write the bundle (default bundle.tar.gz)
  --revision REV       revision written to the bundle manifest (default: none; authz then uses a
                       hash of the content)
  -e, --entrypoint P   rule to compile, e.g. tollgate/authz/decision; repeatable (default: every
                       rule of the contract the policy defines, see docs/policy-input.md)
  -h, --help           this text

Exit status: 0 built, 1 the policy has errors, 2 bad usage.
`,
  capabilities: `Usage: tollgate policy capabilities [-o FILE]

Prints the capabilities JSON of the opa on the PATH with Tollgate's own builtins declared
(tollgate.sql.analyze, see docs/policy-authoring.md). Give it to opa when you run it yourself, so
it accepts policies that call them: opa test --capabilities FILE -b policies. Rego tests mock
those builtins with \`with\` (opa has no implementation of them); the mesh answers them in the host.

  -o, --output FILE    write to FILE instead of standard output
  -h, --help           this text
`,
  check: `Usage: tollgate policy check [DIR] [--no-tests]

Runs opa check --strict on DIR: the policy files against the builtins Tollgate can evaluate in
WebAssembly, then (unless --no-tests) the whole directory with its tests. Every problem is printed
as file:line:col: message.

  DIR                  policy directory (default ${DEFAULT_DIR})
  --no-tests           check only the files that go into the bundle
  -h, --help           this text

Exit status: 0 clean, 1 problems found, 2 bad usage.
`,
  fmt: `Usage: tollgate policy fmt [DIR] [--write | --list] [--fail]

opa fmt over DIR. By default lists the files whose formatting differs from opa fmt's.

  DIR                  policy directory (default ${DEFAULT_DIR})
  --list               list files that need formatting (the default)
  --write              rewrite those files in place
  --fail               exit 1 if any file needed formatting (for CI)
  -h, --help           this text

Exit status: 0 formatted (or listed without --fail), 1 files need formatting with --fail or a
file does not parse, 2 bad usage.
`,
  test: `Usage: tollgate policy test [DIR] [--scenarios GLOB] [--run REGEX] [--coverage] [--json] [-v]

1. opa check --strict on DIR (errors at file:line);
2. opa test on DIR (bundle mode, as opa build reads it): passed/failed counts and failures;
3. compiles DIR to WASM once and runs every scenario case through it, the way authz evaluates a
   call: each case's input is built by the same code that builds it in the mesh. A failing case
   is named with its file:line, what was expected and what the policy decided.

Scenario files are YAML (format: docs/policy-authoring.md):

  defaults: {server: demo, identity: {sub: alice, team: payments}}
  cases:
    - name: payments may search the docs
      request: {tool: search_docs, arguments: {query: refunds}}
      expect: {allow: true}

  DIR                  policy directory (default ${DEFAULT_DIR})
  --scenarios GLOB     scenario files (default DIR/scenarios/**/*.{yaml,yml}); * ? ** {a,b}
  --run REGEX          only cases (and Rego tests, via opa test --run) whose name matches
  --coverage           line coverage per policy file, by the Rego tests (opa test --coverage)
                       and by the scenarios (opa eval --coverage); also checks that OPA's
                       interpreter decides every scenario as the WASM did
  --json               the whole report as one JSON document
  -v, --verbose        list passing tests and cases too
  -h, --help           this text

Exit status: 0 all passed, 1 a test or case failed or a file is invalid, 2 bad usage.
`,
  explain: `Usage: tollgate policy explain --as SUB --tool NAME [--args JSON] [flags]

Evaluates one call and shows why: the decision and reasons from the compiled WASM (what the mesh
would answer), the same call on OPA's interpreter (opa eval on the Rego source; a disagreement is
flagged), the rules whose body held, and any trace() notes. The input is built exactly as authz
builds it.

Who:
  --as SUB             verified subject (required)
  --team T             team claim
  --groups A,B         groups
  --agent A            agent (OAuth client) acting
  --scopes A,B         scopes
  --claims JSON        further claims, e.g. '{"email": "a@example.com"}'
What:
  --tool NAME          a tools/call of this tool
  --args JSON          its arguments, e.g. '{"query": "refunds"}'
  --method M           another JSON-RPC method (initialize, tools/list, resources/read, ...)
  --params JSON        raw params for --method
  --annotations JSON   the tool's annotations as the server declares them, e.g. '{"readOnlyHint": true}'
  --header "N: V"      an extra HTTP header, repeatable (e.g. the bearer token an envoy-mode
                       policy verifies: --header "authorization: Bearer eyJ...")
  --server S           MCP server (default demo)
  --namespace N        its namespace (default default)
  --time T             evaluate as of this time (ISO 8601; default now)
Policy:
  --policies DIR       policy directory (default ${DEFAULT_DIR})
  --entrypoint E       tollgate (data.tollgate.authz.decision, default) or envoy (data.envoy.authz.allow)
  --trace MODE         also print opa eval --explain MODE --format pretty: notes, fails, full
  --json               the result as JSON
  -h, --help           this text

Example:
  tollgate policy explain --as bob --team support --tool run_sql --args '{"query": "SELECT 1"}'
`,
  replay: `Usage: tollgate policy replay --logs FILE|DIR|nats://HOST:PORT --policies NEWDIR [flags]

Re-evaluates recorded decisions under the policy in NEWDIR (compiled to WASM, as the mesh would
run it) and reports what would change: newly denied, newly allowed and unchanged, grouped by
tool, team and reason, with example decision ids. Each record is judged as of the time it was
made. Records are judged on their *masked* input: where masking hid a field the new policy may
read (by OPA's dependency analysis), the record is reported as uncertain, naming the field,
instead of being counted. Records without a policy decision (bad token, malformed request,
budget exhausted) are skipped and counted.

  --logs SRC           a decision log directory, one decisions-*.jsonl file, or the central
                       JetStream stream at nats://HOST:PORT (required)
  --policies NEWDIR    the edited policy directory (required)
  --since T            only records at or after T: ISO time, or a duration ago (24h, 7d)
  --until T            only records before T
  --tool NAME          only this tool (glob with *)
  --team NAME          only this team
  --server NAME        only this MCP server
  --entrypoint E       tollgate (default) or envoy
  --examples N         decision ids shown per group (default 3)
  --stream NAME        JetStream stream with nats:// (default ${DEFAULT_STREAM})
  --subject-prefix P   subject prefix with nats:// (default ${DEFAULT_SUBJECT_PREFIX})
  --fail-on-change     exit 1 if any decision would change (for CI)
  --json               the report as JSON
  -h, --help           this text
`,
};

type Values = Record<string, string | boolean | string[] | boolean[] | undefined>;
const str = (v: Values, k: string): string | undefined => (typeof v[k] === 'string' ? (v[k] as string) : undefined);

function oneDir(positionals: string[]): string {
  if (positionals.length > 1) throw new UsageError(`give one policy directory, got ${positionals.length}: ${positionals.join(' ')}`);
  return positionals[0] ?? DEFAULT_DIR;
}

function entrypointMode(s: string | undefined): EntrypointMode {
  if (s === undefined || s === 'tollgate') return 'tollgate';
  if (s === 'envoy') return 'envoy';
  throw new UsageError(`--entrypoint must be tollgate or envoy, got "${s}"`);
}

function jsonFlag(v: Values, flag: string): unknown {
  const s = str(v, flag);
  if (s === undefined) return undefined;
  try {
    return JSON.parse(s);
  } catch (e) {
    throw new UsageError(`--${flag} is not valid JSON (${(e as Error).message}): ${s}`);
  }
}

function jsonObjectFlag(v: Values, flag: string): Record<string, unknown> | undefined {
  const x = jsonFlag(v, flag);
  if (x === undefined) return undefined;
  if (typeof x !== 'object' || x === null || Array.isArray(x)) throw new UsageError(`--${flag} must be a JSON object, e.g. '{"query": "refunds"}'`);
  return x as Record<string, unknown>;
}

const list = (s: string | undefined): string[] | undefined => (s === undefined ? undefined : s.split(',').map((x) => x.trim()).filter(Boolean));

function problemsOut(io: PolicyIo, e: PolicyBuildError): number {
  io.err(e.message + '\n');
  return 1;
}

async function build(argv: string[], io: PolicyIo): Promise<number> {
  const { values: v, positionals } = parseCommandArgs(argv, {
    output: { type: 'string', short: 'o' }, revision: { type: 'string' }, entrypoint: { type: 'string', short: 'e', multiple: true },
  }, true);
  if (v.help) return help(io, 'build');
  const dir = oneDir(positionals);
  const out = v.output ?? 'bundle.tar.gz';
  const bytes = await buildPolicyBundle(dir, { ...(v.entrypoint?.length ? { entrypoints: v.entrypoint } : {}), ...(v.revision !== undefined ? { revision: v.revision } : {}) });
  await writeFile(out, bytes);
  const manifest = readManifest(await readBundle(bytes));
  io.out(`wrote ${out} (${bytes.length} bytes) from ${dir}\n`);
  io.out(`  entrypoints: ${manifest.wasm.map((w) => w.entrypoint).join(', ') || '(none)'}\n`);
  if (manifest.revision) io.out(`  revision: ${manifest.revision}\n`);
  return 0;
}

async function check(argv: string[], io: PolicyIo): Promise<number> {
  const { values: v, positionals } = parseCommandArgs(argv, { 'no-tests': { type: 'boolean' } }, true);
  if (v.help) return help(io, 'check');
  const dir = oneDir(positionals);
  await checkPolicies(dir, { tests: !v['no-tests'] });
  io.out(`${dir}: no problems (opa check --strict${v['no-tests'] ? '' : ', tests included'})\n`);
  // Not problems, but what an author who never heard of listings needs to know about tools/list.
  for (const l of (await policyListingRules(dir)).variants) {
    io.out(`${join(dir, l.from.file)}:${l.from.row}: note: this allow rule reads the call's arguments; tools/list judges it without ` +
      `${l.dropped.map((d) => `\`${d.replace(/\s+/g, ' ')}\``).join(', ')}, so a tool is listed when some arguments could unlock it ` +
      '(docs/policy-input.md, "Listings"; test it with a scenario case `request: {listed: TOOL}`)\n');
  }
  return 0;
}

async function capabilities(argv: string[], io: PolicyIo): Promise<number> {
  const { values: v } = parseCommandArgs(argv, { output: { type: 'string', short: 'o' } });
  if (v.help) return help(io, 'capabilities');
  const json = await opaCapabilitiesJson();
  if (v.output) await writeFile(v.output, json + '\n');
  else io.out(json + '\n');
  return 0;
}

async function fmt(argv: string[], io: PolicyIo): Promise<number> {
  const { values: v, positionals } = parseCommandArgs(argv, { write: { type: 'boolean', short: 'w' }, list: { type: 'boolean', short: 'l' }, fail: { type: 'boolean' } }, true);
  if (v.help) return help(io, 'fmt');
  if (v.write && v.list) throw new UsageError('give --write or --list, not both');
  const dir = oneDir(positionals);
  const r = await fmtPolicies(dir, { write: !!v.write });
  for (const f of r.files) io.out(`${f}\n`);
  if (r.files.length === 0) io.err(`${dir}: every file is formatted\n`);
  else io.err(`${r.files.length} file${r.files.length === 1 ? '' : 's'} ${v.write ? 'reformatted' : 'need formatting (tollgate policy fmt --write)'}\n`);
  return v.fail && r.files.length > 0 ? 1 : 0;
}

/** BigInt-safe JSON. */
const toJson = (x: unknown): string => JSON.stringify(x, (_k, val: unknown) => (typeof val === 'bigint' ? val.toString() : val), 2) + '\n';

async function test(argv: string[], io: PolicyIo): Promise<number> {
  const { values: v, positionals } = parseCommandArgs(argv, {
    scenarios: { type: 'string' }, run: { type: 'string' }, coverage: { type: 'boolean' }, json: { type: 'boolean' }, verbose: { type: 'boolean', short: 'v' },
  }, true);
  if (v.help) return help(io, 'test');
  const dir = oneDir(positionals);
  if (v.run !== undefined) {
    try {
      new RegExp(v.run);
    } catch (e) {
      throw new UsageError(`--run is not a valid regular expression: ${(e as Error).message}`);
    }
  }
  const report = await testPolicies({ dir, scenarios: v.scenarios ?? null, run: v.run ?? null, coverage: !!v.coverage, now: () => BigInt(io.now().getTime()) * 1_000_000n });
  if (v.json) {
    const { results, ...rest } = report;
    io.out(toJson({ ...rest, defaultScenarioGlob: defaultScenarioGlob(dir), results: results.map(({ input: _input, ...r }) => r) }));
  } else {
    io.out(renderTestReport(report, !!v.verbose));
  }
  return report.ok ? 0 : 1;
}


async function explain(argv: string[], io: PolicyIo): Promise<number> {
  const { values: v, positionals } = parseCommandArgs(argv, {
    as: { type: 'string' }, team: { type: 'string' }, groups: { type: 'string' }, agent: { type: 'string' }, scopes: { type: 'string' },
    claims: { type: 'string' }, tool: { type: 'string' }, args: { type: 'string' }, method: { type: 'string' }, params: { type: 'string' },
    annotations: { type: 'string' }, server: { type: 'string' }, namespace: { type: 'string' }, time: { type: 'string' },
    policies: { type: 'string' }, entrypoint: { type: 'string' }, trace: { type: 'string' }, json: { type: 'boolean' },
    header: { type: 'string', multiple: true },
  }, false);
  if (v.help) return help(io, 'explain');
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (!v.as) throw new UsageError('--as SUB is required: whose call to explain');
  if (!v.tool && !v.method) throw new UsageError('say which call: --tool NAME (a tools/call) or --method M');
  if (v.tool && v.method && v.method !== 'tools/call') throw new UsageError('--tool is a tools/call; leave out --method or use --params');
  if (v.params !== undefined && (v.tool || v.args !== undefined)) throw new UsageError('give --tool/--args or --method/--params, not both');
  const trace = v.trace;
  if (trace !== undefined && !['notes', 'fails', 'full', 'debug'].includes(trace)) throw new UsageError(`--trace must be notes, fails, full or debug, got "${trace}"`);
  const mode = entrypointMode(v.entrypoint);
  const at = timeFlag(v.time, 'time', io.now()) ?? io.now();
  const headers = headerFlags(v.header ?? []);
  const request: RequestSpec = {
    ...(v.tool ? { tool: v.tool, arguments: jsonObjectFlag(v, 'args') ?? {} } : { method: v.method!, ...(v.params !== undefined ? { params: jsonObjectFlag(v, 'params') } : {}) }),
    ...(Object.keys(headers).length ? { headers } : {}),
  };
  const call: CallSpec = {
    server: v.server ?? 'demo', namespace: v.namespace ?? 'default',
    identity: { sub: v.as, team: v.team ?? null, groups: list(v.groups) ?? [], agent: v.agent ?? null, scopes: list(v.scopes) ?? [], claims: jsonObjectFlag(v, 'claims') ?? {} },
    request, budget: null, annotations: (jsonObjectFlag(v, 'annotations') as ToolAnnotations | undefined) ?? null,
    nowNs: BigInt(at.getTime()) * 1_000_000n, mode,
  };
  const dir = v.policies ?? DEFAULT_DIR;
  const policy = await loadPolicyFromDir(dir, { entrypoint: mode });
  let result;
  try {
    result = await explainCall(policy, { dir, call, traceMode: (trace as TraceMode | undefined) ?? null });
  } catch (e) {
    if (e instanceof CallRefusedError) {
      io.err(`${e.message}\n`);
      return 1;
    }
    throw e;
  }
  io.out(v.json ? toJson(result) : renderExplain(result));
  return 0;
}

/** --header "name: value", repeatable. */
function headerFlags(hs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of hs) {
    const i = h.indexOf(':');
    if (i <= 0) throw new UsageError(`--header must look like "name: value", got "${h}"`);
    out[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
  }
  return out;
}

function count(flag: string, s: string | undefined, dflt: number): number {
  if (s === undefined) return dflt;
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < 0) throw new UsageError(`--${flag} must be a whole number ≥ 0, got "${s}"`);
  return n;
}

async function replay(argv: string[], io: PolicyIo): Promise<number> {
  const { values: v, positionals } = parseCommandArgs(argv, {
    logs: { type: 'string' }, policies: { type: 'string' }, since: { type: 'string' }, until: { type: 'string' }, tool: { type: 'string' },
    team: { type: 'string' }, server: { type: 'string' }, entrypoint: { type: 'string' }, examples: { type: 'string' }, stream: { type: 'string' },
    'subject-prefix': { type: 'string' }, 'fail-on-change': { type: 'boolean' }, json: { type: 'boolean' },
  }, false);
  if (v.help) return help(io, 'replay');
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (!v.logs) throw new UsageError('--logs is required: a decision log directory or file, or nats://HOST:PORT');
  if (!v.policies) throw new UsageError('--policies NEWDIR is required: the policy to replay the decisions under');
  const now = io.now();
  const filter: RecordFilter = {
    since: timeFlag(v.since, 'since', now), until: timeFlag(v.until, 'until', now), tool: v.tool ?? null, team: v.team ?? null, server: v.server ?? null,
  };
  if (filter.since && filter.until && filter.since >= filter.until) throw new UsageError('--since must be before --until');
  const source = logSource(v.logs, v.stream ?? DEFAULT_STREAM, v['subject-prefix'] ?? DEFAULT_SUBJECT_PREFIX);
  const run = await replayDecisions({ source, policies: v.policies, mode: entrypointMode(v.entrypoint), filter, examples: count('examples', v.examples, 3) });
  if (run.skipped !== null) io.err(`tollgate policy replay: ${run.skipped}; they were not replayed (\`tollgate logs verify\` checks whether the log was altered)\n`);
  if (v.json) io.out(toJson({ source: v.logs, policies: v.policies, revision: run.revision, reads: run.reads.map((r) => ['input', ...r].join('.')), ...run.report }));
  else io.out(renderReplay(run.report, { source: v.logs, policies: v.policies, revision: run.revision, reads: run.reads }));
  const changed = run.report.newlyDenied.count + run.report.newlyAllowed.count > 0;
  return v['fail-on-change'] && changed ? 1 : 0;
}

function help(io: PolicyIo, topic: string): number {
  io.out(HELP[topic]!);
  return 0;
}

const SUBCOMMANDS: Record<string, (argv: string[], io: PolicyIo) => Promise<number>> = { build, check, fmt, test, explain, replay, capabilities, show: (argv, io) => showRevision(argv, io) };

export function createPolicyCommand(partial: Partial<PolicyIo> = {}): Command {
  const io: PolicyIo = { ...STDIO, now: () => new Date(), ...partial };
  return {
    name: 'policy',
    summary: 'Build, check, test, explain and replay policies',
    run: (argv) => dispatchTable({ command: 'policy', usage: HELP.policy!, io }, SUBCOMMANDS, argv, (e, sub) => {
      if (e instanceof PolicyBuildError) return problemsOut(io, e);
      io.err(`tollgate policy ${sub}: ${(e as Error).message}\n`);
      return 1;
    }),
  };
}

export const policyCommand: Command = createPolicyCommand();
