import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { trustedKeysFrom, type TrustedKeys } from '../decisionlog/checkpoint.js';
import { listLogFiles, LOCK_FILE, PUBLIC_KEYS_FILE, resolveLogFiles, type LogFile } from '../decisionlog/files.js';
import { ARGS_WIDTH, clip, GROUPS_WIDTH, recordRow, renderRecords, renderSpend, renderStats, renderVerify, RECORD_COLUMNS, safeJson } from '../decisionlog/format.js';
import { jwkThumbprint, KeyFileError, publicJwksFromFile } from '../decisionlog/keys.js';
import { readStreamEntries } from '../decisionlog/nats-reader.js';
import { AccountingJoin, compileFilter, StatsBuilder, TOOL_CLASSES, type RecordFilter, type RecordPredicate, type ToolClass } from '../decisionlog/query.js';
import { SkippedLines } from '../decisionlog/lines.js';
import { LogCursor, readEntriesOfFiles, readRecordsOfFiles } from '../decisionlog/reader.js';
import { parseDimensions, parsePriceTable, PriceTableError, SpendBuilder, spendCsv, type PriceTable } from '../decisionlog/spend.js';
import { isAccounting, type ChainedDecisionRecord, type ChainedLogEntry } from '../decisionlog/types.js';
import { parse as parseYaml } from 'yaml';
import { verifyLogFiles, type VerifyOptions, type VerifyReport } from '../decisionlog/verify.js';
import { defaultWitnessPath, readWitness, type WitnessedCheckpoint } from '../decisionlog/witness.js';
import { openNats } from '../nats/connect.js';
import type { NatsSettings } from '../nats/settings.js';
import { NATS_FLAGS, natsSettingsFromFlags } from './nats-flags.js';
import { findMesh } from '../mesh/mesh-file.js';
import { parseCommandArgs, timeFlag } from './args.js';
import { UsageError, type Command } from './types.js';
import { dispatchTable, STDIO, type CommandIo } from './subcommands.js';
import { version as TOLLGATE_VERSION } from '../util/version.js';

/** Where `tollgate logs` writes, and what it reads the clock and environment from (tests inject these). */
export interface LogsIo extends CommandIo {
  env: NodeJS.ProcessEnv;
  now: () => Date;
  /** Ends `tail -f`; by default SIGINT/SIGTERM do. */
  signal?: AbortSignal;
  /** How often `tail -f` looks for new records in local files. */
  pollMs?: number;
}

const DEFAULT_STREAM = 'TOLLGATE_DECISIONS';
const DEFAULT_PREFIX = 'tollgate.decisions';

export const SOURCE_HELP = `Where records come from (default: the local log):
  --dir DIR              local decision log directory (default DIR/decisions of --state)
  --state DIR            state directory of the mesh (default $TOLLGATE_STATE_DIR, else ./.state)
  --nats URL             read the central JetStream stream instead (all instances), e.g.
                         nats://127.0.0.1:4222; the URL of the mesh \`tollgate up\` runs in the
                         state directory gets its reviewer credential from <state>/mesh.json
  --nats-ca FILE, --nats-cert FILE, --nats-key FILE
                         TLS and the reviewer's client certificate, for a NATS with per-component
                         credentials (\`tollgate up\` prints them; docs/security.md)
  --stream NAME          stream name with --nats (default ${DEFAULT_STREAM})
  --subject-prefix P     subject prefix with --nats (default ${DEFAULT_PREFIX})`;

const FILTER_HELP = `Filters (all optional, combined with AND; NAME values match exactly or as a glob with *):
  --since T              records at or after T: ISO date/time (2025-03-01, 2025-03-01T12:00:00Z),
                         a duration ago (30m, 24h, 7d, 2w), or now, today, yesterday (UTC days)
  --until T              records before T (same forms)
  --sub NAME             verified subject (user or workload)
  --team NAME            team claim
  --agent NAME           agent claim
  --server NAME          MCP server
  --namespace NAME       namespace of the MCP server
  --tool NAME            tool name (e.g. delete_records, or delete_*)
  --method NAME          JSON-RPC method (tools/call, tools/list, initialize, ...)
  --decision allow|deny  only allowed or only denied calls
  --reason TEXT          reasons (or error) containing TEXT, case-insensitive
  --id ID                one decision id (as returned to the client in the error / header)
  --revision REV         policy bundle revision
  --class C              tools/call of a read, write or destructive tool, from the annotations
                         its server declared (readOnlyHint, destructiveHint, with the MCP
                         spec's defaults), or unknown: authz had no annotations for the tool at
                         call time (it was called before any tools/list)
  --destructive          calls that may have destroyed something: --class destructive and
                         --class unknown together
  --annotation K=V       the called tool's annotation K equals V (V read as JSON when it
                         parses: --annotation openWorldHint=true); repeatable`;

const HELP = {
  logs: `Usage: tollgate logs <query|tail|stats|export|verify> [flags]

Reads the decision log: one hash-chained record per authorization decision (allow, deny, and
refusals such as bad tokens), with masked arguments, the verified identity, the reasons and the
policy revision. Schema and guarantees: docs/decision-log.md.

  query    list decisions matching filters (table, or --json lines)
  tail     the last decisions, and with -f new ones as they are written
  stats    top denied tools, denies per team and reason; --by: spend (calls, tokens, cost)
  export   decisions for a SIEM: OCSF API Activity events or OTLP log records (docs/siem.md)
  verify   prove a log is complete and unaltered (hash chain + signed checkpoints)

Example: who called delete_records on the billing server yesterday, under which policy revision,
and is the log complete?
  tollgate logs query --tool delete_records --server billing --since yesterday --until today
  tollgate logs verify --key decision-log-public.jwks

Lines query, tail, stats and export cannot read (not JSON, or a record with a field of the wrong
type) are skipped and counted on stderr with the file:line of the first; files with no line of a
decision log in them are no log (exit 1).

Run \`tollgate logs <subcommand> --help\` for its flags.
`,
  query: `Usage: tollgate logs query [filters] [--json] [--limit N] [--dir DIR | --nats URL]

Lists matching decisions, oldest first, as a table (TIME, DECISION, SUB, TEAM, AGENT, GROUPS,
SERVER, TOOL, ARGS, REVISION, REASONS; GROUPS and ARGS, the masked arguments as JSON, are cut at
24 and 40 characters, other values never; control characters are shown as \\uXXXX) or, with
--json, one full record per line (masked input included).

Which destructive tools were called this week, by whom, with which arguments:
  tollgate logs query --destructive --decision allow --since 7d

${FILTER_HELP}

Output:
  --json                 one JSON record per line instead of the table
  --accounting           with --json: each allowed call is followed by its accounting record
                         (schema tollgate.accounting/v1: tokens in and out, written once the
                         response has flowed back), matched through its decision_id
  --limit N              stop after N matching records (default: all)

${SOURCE_HELP}
  -h, --help             this text
`,
  tail: `Usage: tollgate logs tail [-n N] [-f] [filters] [--json] [--dir DIR | --nats URL]

Shows the last N matching decisions; with -f, keeps printing new ones until interrupted (Ctrl-C).
Follows rotation of the local log. With --nats, "last N" counts messages of the selected
servers before the other filters apply, so fewer than N may show.

  -n, --lines N          how many to show first (default 10; 0 with -f shows only new ones)
  -f, --follow           keep printing new decisions
  --json                 one JSON record per line instead of the table

${FILTER_HELP}

${SOURCE_HELP}
  -h, --help             this text
`,
  stats: `Usage: tollgate logs stats [filters] [--top N] [--json] [--dir DIR | --nats URL]
       tollgate logs stats --by DIMS [--prices FILE] [filters] [--json | --csv] [--dir DIR | --nats URL]

Counts decisions (allowed, denied, refused before policy) and ranks the top denied tools, the
denies per team and the denies per reason.

With --by, a spend report instead: one row per group with calls (allowed, denied), tokens in
(tool arguments) and out (tool results, from the accounting records written after each
response) and their cost from a price table, most expensive first, with a total.

  --top N                rows per ranking (default 10)
  --json                 the numbers as one JSON object
  --by DIMS              group by a comma-separated list of team, tool, server, namespace,
                         sub, agent, method (e.g. --by team,tool)
  --prices FILE          price table (YAML or JSON): currency and prices per server and/or
                         tool per 1,000 tokens in and out (docs/decision-log.md, "Spend")
  --csv                  the spend report as CSV (RFC 4180) instead of a table

${FILTER_HELP}

${SOURCE_HELP}
  -h, --help             this text
`,
  export: `Usage: tollgate logs export --format ocsf|otlp [--endpoint URL | --out FILE] [filters] [--dir DIR | --nats URL]

Exports matching decision records, oldest first, for a SIEM, without custom parsing:
  ocsf   one OCSF API Activity event (class_uid 6003) per line
  otlp   OpenTelemetry log records (OTLP/JSON); with --endpoint, POSTed to <URL>/v1/logs in
         batches (an OpenTelemetry Collector's OTLP/HTTP receiver, usually port 4318); else one
         ExportLogsServiceRequest per line, the format a collector's file receiver reads
Field mapping: docs/siem.md. Accounting records are not exported.

  --format ocsf|otlp     event format (required)
  --out FILE             write to FILE instead of stdout (appends; created mode 0600)
  --endpoint URL         otlp only: send to this OTLP/HTTP endpoint instead of writing
  --header K=V           otlp --endpoint: extra HTTP header (e.g. authorization=Bearer …); repeatable
  --batch N              records per line or request (default 500)
  --limit N              stop after N matching records (default: all)

${FILTER_HELP}

${SOURCE_HELP}
  -h, --help             this text

Exit status: 0 exported (or nothing matched), 1 the endpoint refused or could not be reached
(the records before the failing batch were sent), 2 bad usage.
`,
  verify: `Usage: tollgate logs verify [FILE|DIR] [--key PUBKEY] [--witness FILE] [--strict] [--json]

Checks that a decision log is complete and unaltered: every record's hash chain link (across
rotated files), the seq numbering, and every checkpoint's signature and hash, and compares the
log with the checkpoints its witness holds. Reports exactly where it breaks: edited record,
deleted record, reordering, duplicate, truncated tail (torn last line, records missing after a
checkpoint in the log or in the witness, newest file deleted), forged checkpoint.

  FILE|DIR               a log directory (default: the local log, see --dir) or one file; a
                         single file is checked on its own, from whatever seq it starts at
  --dir DIR              same as giving DIR
  --state DIR            the log in DIR/decisions (default $TOLLGATE_STATE_DIR, else ./.state)
  --key PUBKEY           public key(s) trusted for checkpoint signatures: a JWK, a JWK Set or a
                         PEM key. Default: DIR/${PUBLIC_KEYS_FILE}, which the writer keeps next to
                         the log; a copy kept elsewhere is stronger evidence (the report says so)
  --witness FILE         the log's witness: append-only copies of its checkpoints, kept outside
                         the log directory (default DIR.witness.jsonl beside DIR, if it exists)
  --strict               warnings fail too (unsigned tail, recovered crash, key from the log dir)
  --json                 the report as JSON
  -h, --help             this text

Exit status: 0 intact, 1 broken (or warnings with --strict), 2 bad usage, no log, a key file
that cannot be read or holds no key, or nothing to verify (an empty file, or no line in it is a
decision record, checkpoint or file head).
`,
};

export const SOURCE_OPTIONS = {
  dir: { type: 'string' },
  state: { type: 'string' },
  ...NATS_FLAGS,
  stream: { type: 'string' },
  'subject-prefix': { type: 'string' },
} as const;

const FILTER_OPTIONS = {
  since: { type: 'string' },
  until: { type: 'string' },
  sub: { type: 'string' },
  team: { type: 'string' },
  agent: { type: 'string' },
  server: { type: 'string' },
  namespace: { type: 'string' },
  tool: { type: 'string' },
  method: { type: 'string' },
  decision: { type: 'string' },
  reason: { type: 'string' },
  id: { type: 'string' },
  revision: { type: 'string' },
  class: { type: 'string' },
  destructive: { type: 'boolean' },
  annotation: { type: 'string', multiple: true },
} as const;

type Values = Record<string, string | boolean | string[] | boolean[] | undefined>;

const str = (v: Values, k: string): string | undefined => (typeof v[k] === 'string' ? (v[k] as string) : undefined);

function filterFrom(v: Values, now: Date): RecordFilter {
  const time = (flag: string): Date | null => timeFlag(str(v, flag), flag, now);
  const decision = str(v, 'decision');
  if (decision !== undefined && decision !== 'allow' && decision !== 'deny') throw new UsageError(`--decision must be allow or deny, got "${decision}"`);
  const f: RecordFilter = {
    since: time('since'), until: time('until'), sub: str(v, 'sub'), team: str(v, 'team'), agent: str(v, 'agent'),
    server: str(v, 'server'), namespace: str(v, 'namespace'), tool: str(v, 'tool'), method: str(v, 'method'),
    decision: decision ?? null, reason: str(v, 'reason'), decisionId: str(v, 'id'), revision: str(v, 'revision'),
  };
  const cls = str(v, 'class');
  if (v.destructive === true && cls !== undefined) throw new UsageError('give either --destructive or --class, not both');
  if (cls !== undefined && !(TOOL_CLASSES as readonly string[]).includes(cls)) throw new UsageError(`--class must be one of ${TOOL_CLASSES.join(', ')}, got "${cls}"`);
  f.toolClass = v.destructive === true ? ['destructive', 'unknown'] : cls !== undefined ? [cls as ToolClass] : null;
  f.annotations = (Array.isArray(v.annotation) ? v.annotation as string[] : []).map((kv) => {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new UsageError(`--annotation "${kv}" must be KEY=VALUE, e.g. destructiveHint=true`);
    const raw = kv.slice(eq + 1);
    let value: unknown = raw;
    try { value = JSON.parse(raw); } catch { /* a plain string */ }
    return [kv.slice(0, eq), value] as const;
  });
  if (f.since && f.until && f.since >= f.until) throw new UsageError(`--since (${f.since.toISOString()}) must be before --until (${f.until.toISOString()})`);
  return f;
}

function count(flag: string, s: string | undefined, dflt: number, min = 0): number {
  if (s === undefined) return dflt;
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`--${flag} must be a whole number ≥ ${min}, got "${s}"`);
  return n;
}

interface Source {
  kind: 'dir' | 'nats';
  dir: string;
  nats: NatsSettings | null;
  stream: string;
  prefix: string;
}

function sourceFrom(v: Values, io: LogsIo): Source {
  const url = str(v, 'nats');
  if (url !== undefined && str(v, 'dir') !== undefined) throw new UsageError('give either --dir or --nats, not both');
  const { stateDir, mesh } = findMesh(str(v, 'state'), io.env);
  // The mesh's own NATS: its reviewer credential, unless the flags name one.
  const reviewer = url !== undefined && mesh?.endpoints.nats === url && str(v, 'nats-cert') === undefined ? mesh.natsCredentials.reviewer : undefined;
  return {
    kind: url !== undefined ? 'nats' : 'dir',
    dir: str(v, 'dir') ?? join(stateDir, 'decisions'),
    nats: natsSettingsFromFlags(reviewer
      ? { nats: url, 'nats-ca': reviewer.ca, 'nats-cert': reviewer.cert, 'nats-key': reviewer.key }
      : { nats: url, 'nats-ca': str(v, 'nats-ca'), 'nats-cert': str(v, 'nats-cert'), 'nats-key': str(v, 'nats-key') }),
    stream: str(v, 'stream') ?? DEFAULT_STREAM,
    prefix: str(v, 'subject-prefix') ?? DEFAULT_PREFIX,
  };
}

class NoLogError extends Error {}

function requireLogDir(dir: string): void {
  if (!existsSync(dir) || listLogFiles(dir).length === 0) {
    throw new NoLogError(`no decision log in ${dir}: pass --dir DIR, set TOLLGATE_STATE_DIR, or read the central copy with --nats URL`);
  }
}

/** Decision records from the chosen source (accounting records left out), in log order. */
async function* records(src: Source, f: RecordFilter, skipped: SkippedLines, extra: StreamExtra = {}): AsyncGenerator<ChainedDecisionRecord> {
  for await (const e of entries(src, f, skipped, extra)) if (!isAccounting(e)) yield e;
}

/** Files that hold lines, not one of them a line of a decision log (garbage, a binary file). */
function notALog(dir: string, skipped: SkippedLines): NoLogError {
  const first = skipped.firstUnreadable!;
  return new NoLogError(`${dir} holds no decision log: none of its ${skipped.unreadable} line(s) is a decision record, checkpoint or file head (${first.where}: ${first.problem})`);
}

/**
 * Says on stderr what the read skipped (lines that are not records of the log, records with a
 * field of the wrong type), with where the first is: never a silent gap in an answer.
 */
function reportSkipped(io: LogsIo, sub: string, skipped: SkippedLines): void {
  const s = skipped.report();
  if (s !== null) io.err(`tollgate logs ${sub}: ${s}; \`tollgate logs verify\` checks whether the log was altered\n`);
}

function printer(io: LogsIo, json: boolean): { header: () => void; row: (r: ChainedDecisionRecord) => void } {
  if (json) return { header: () => undefined, row: (r) => io.out(safeJson(r) + '\n') };
  // Streaming output cannot size columns from the data: fixed widths, a longer value cut with "…"
  // so every row's columns line up (--json has whole values; REASONS, last, is never cut).
  const widths = [20, 8, 16, 12, 12, GROUPS_WIDTH, 16, 20, ARGS_WIDTH, 8];
  const fmt = (cols: string[]): string => cols.map((c, i) => (i === cols.length - 1 ? c : clip(c, widths[i]!).padEnd(widths[i]!))).join('  ').trimEnd() + '\n';
  return { header: () => io.out(fmt(RECORD_COLUMNS)), row: (r) => io.out(fmt(recordRow(r))) };
}

async function query(argv: string[], io: LogsIo): Promise<number> {
  const { values: v } = parseCommandArgs(argv, { ...SOURCE_OPTIONS, ...FILTER_OPTIONS, json: { type: 'boolean' }, accounting: { type: 'boolean' }, limit: { type: 'string' } });
  if (v.help) return help(io, 'query');
  const f = filterFrom(v, io.now());
  const limit = count('limit', v.limit, Infinity, 1);
  const src = sourceFrom(v, io);
  const match = compileFilter(f);
  const found: ChainedDecisionRecord[] = [];
  const skipped = new SkippedLines();
  let n = 0;
  if (v.accounting && !v.json) throw new UsageError('--accounting goes with --json');
  if (v.json && v.accounting) {
    // Each matching call's accounting record (its response tokens) follows it.
    const join = new AccountingJoin();
    for await (const r of entries(src, f, skipped)) {
      if (isAccounting(r)) {
        if (join.accounting(r.decision_id)) io.out(safeJson(r) + '\n');
        continue;
      }
      const m = match(r);
      join.decision(r, m);
      if (!m) continue;
      io.out(safeJson(r) + '\n');
      if (++n >= limit) break;
    }
  } else {
    for await (const r of records(src, f, skipped)) {
      if (!match(r)) continue;
      n++;
      if (v.json) io.out(safeJson(r) + '\n');
      else found.push(r);
      if (n >= limit) break;
    }
  }
  reportSkipped(io, 'query', skipped);
  if (n === 0) io.err('no matching decisions\n');
  else if (!v.json) io.out(renderRecords(found));
  return 0;
}

interface StreamExtra { follow?: boolean; last?: number | null; signal?: AbortSignal }

/** Decisions and accounting records from the chosen source, in log order, already narrowed by what the source can filter. */
async function* entries(src: Source, f: RecordFilter, skipped: SkippedLines, extra: StreamExtra = {}): AsyncGenerator<ChainedLogEntry> {
  if (src.kind === 'nats') {
    const link = await openNats(src.nats!, { name: 'tollgate-logs', firstConnectMs: 5000 });
    try {
      for await (const r of readStreamEntries({
        link, stream: src.stream, subjectPrefix: src.prefix,
        namespace: f.namespace && !f.namespace.includes('*') ? f.namespace : null,
        server: f.server && !f.server.includes('*') ? f.server : null,
        since: f.since ?? null, last: extra.last ?? null, follow: extra.follow ?? false, signal: extra.signal, skipped,
      })) yield r.record;
    } finally {
      await link.close();
    }
    return;
  }
  requireLogDir(src.dir);
  for (const r of readEntriesOfFiles(listLogFiles(src.dir), skipped)) yield r.record;
  if (skipped.nothingReadable) throw notALog(src.dir, skipped);
}

function loadPrices(path: string | undefined): PriceTable | null {
  if (path === undefined) return null;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`--prices: cannot read ${path} (${(e as Error).message})`);
  }
  try {
    return parsePriceTable(parseYaml(text) as unknown, path);
  } catch (e) {
    if (e instanceof PriceTableError) throw new UsageError(e.message);
    throw new UsageError(`--prices: ${path} is not YAML or JSON (${(e as Error).message})`);
  }
}

async function spend(v: Values, io: LogsIo, f: RecordFilter): Promise<number> {
  let by;
  try {
    by = parseDimensions(str(v, 'by') ?? '');
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (v.json && v.csv) throw new UsageError('give either --json or --csv, not both');
  const b = new SpendBuilder(by, loadPrices(str(v, 'prices')));
  const match = compileFilter(f);
  const join = new AccountingJoin();
  const skipped = new SkippedLines();
  for await (const e of entries(sourceFrom(v, io), f, skipped)) {
    if (isAccounting(e)) {
      if (join.accounting(e.decision_id)) b.add(e);
      continue;
    }
    const m = match(e);
    join.decision(e, m);
    if (m) b.add(e);
  }
  reportSkipped(io, 'stats', skipped);
  const r = b.result();
  io.out(v.csv ? spendCsv(r) : v.json ? safeJson(r, 2) + '\n' : renderSpend(r));
  return 0;
}

async function stats(argv: string[], io: LogsIo): Promise<number> {
  const { values: v } = parseCommandArgs(argv, {
    ...SOURCE_OPTIONS, ...FILTER_OPTIONS, json: { type: 'boolean' }, top: { type: 'string' }, by: { type: 'string' }, prices: { type: 'string' }, csv: { type: 'boolean' },
  });
  if (v.help) return help(io, 'stats');
  const f = filterFrom(v, io.now());
  if (v.by !== undefined) return spend(v, io, f);
  if (v.prices !== undefined || v.csv) throw new UsageError('--prices and --csv go with --by (the spend report)');
  const top = count('top', v.top, 10, 1);
  const match = compileFilter(f);
  const b = new StatsBuilder();
  const skipped = new SkippedLines();
  for await (const r of records(sourceFrom(v, io), f, skipped)) if (match(r)) b.add(r);
  reportSkipped(io, 'stats', skipped);
  const s = b.result(top);
  io.out(v.json ? safeJson(s, 2) + '\n' : renderStats(s));
  return 0;
}

function stopSignal(io: LogsIo): { signal: AbortSignal; dispose: () => void } {
  if (io.signal) return { signal: io.signal, dispose: () => undefined };
  const ac = new AbortController();
  const stop = (): void => ac.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return { signal: ac.signal, dispose: () => { process.off('SIGINT', stop); process.off('SIGTERM', stop); } };
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> => new Promise((resolve) => {
  const t = setTimeout(done, ms);
  function done(): void { clearTimeout(t); signal.removeEventListener('abort', done); resolve(); }
  signal.addEventListener('abort', done, { once: true });
});

/**
 * The last `n` matching records of a local log, reading files from the newest back, and the
 * highest seq there (skipped records included, so following the log does not read them again).
 */
function lastOfDir(dir: string, n: number, match: RecordPredicate, skipped: SkippedLines): { records: ChainedDecisionRecord[]; lastSeq: number } {
  const files = listLogFiles(dir);
  let picked: ChainedDecisionRecord[] = [];
  for (let i = files.length - 1; i >= 0; i--) {
    const inFile = [...readRecordsOfFiles([files[i]!], skipped)].map((x) => x.record);
    picked = [...inFile.filter(match), ...picked];
    if (picked.length >= n) break;
  }
  if (skipped.nothingReadable) throw notALog(dir, skipped);
  return { records: n === 0 ? [] : picked.slice(-n), lastSeq: skipped.maxSeq };
}

async function tail(argv: string[], io: LogsIo): Promise<number> {
  const { values: v } = parseCommandArgs(argv, {
    ...SOURCE_OPTIONS, ...FILTER_OPTIONS, json: { type: 'boolean' }, lines: { type: 'string', short: 'n' }, follow: { type: 'boolean', short: 'f' },
  });
  if (v.help) return help(io, 'tail');
  const f = filterFrom(v, io.now());
  const n = count('lines', v.lines, 10);
  const src = sourceFrom(v, io);
  const match = compileFilter(f);
  const p = printer(io, !!v.json);
  const skipped = new SkippedLines();

  if (src.kind === 'nats') {
    const stop = v.follow ? stopSignal(io) : null;
    p.header();
    try {
      const shown: ChainedDecisionRecord[] = [];
      for await (const r of records(src, f, skipped, { follow: !!v.follow, last: n, signal: stop?.signal })) {
        if (v.follow) reportSkipped(io, 'tail', skipped);
        if (!match(r)) continue;
        if (v.follow) p.row(r);
        else shown.push(r);
      }
      for (const r of shown.slice(-n)) p.row(r);
    } finally {
      stop?.dispose();
    }
    reportSkipped(io, 'tail', skipped);
    return 0;
  }

  requireLogDir(src.dir);
  const { records: last, lastSeq } = lastOfDir(src.dir, n, match, skipped);
  p.header();
  for (const r of last) p.row(r);
  reportSkipped(io, 'tail', skipped);
  if (!v.follow) return 0;
  const stop = stopSignal(io);
  try {
    const cursor = new LogCursor(src.dir, lastSeq + 1, skipped);
    while (!stop.signal.aborted) {
      const batch = cursor.read(1000);
      for (const x of batch) if (match(x.record)) p.row(x.record);
      reportSkipped(io, 'tail', skipped);
      if (batch.length === 0) await sleep(io.pollMs ?? 500, stop.signal);
    }
  } finally {
    stop.dispose();
  }
  return 0;
}

/** Whether a running process holds the log (its pid is in LOCK). */
function liveWriter(dir: string): boolean {
  try {
    const pid = Number(readFileSync(join(dir, LOCK_FILE), 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0) return false;
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The keys verify trusts, from a file. One that cannot be read or holds no usable key is
 * unreadable input (exit 2), not a broken log: nothing was checked against it.
 */
function trustedKeys(path: string, what: string): TrustedKeys {
  let keys;
  try {
    keys = publicJwksFromFile(path);
  } catch (e) {
    const problem = e instanceof KeyFileError ? e.message.replace(/^checkpoint signing key .*?: /, '') : (e as Error).message;
    throw new NoLogError(`${what} ${path}: ${problem}; give the public key the log's checkpoints are signed with (a JWK, a JWK Set or a PEM key)`);
  }
  if (keys.length === 0) throw new NoLogError(`${what} ${path} holds no key; give the public key the log's checkpoints are signed with (a JWK, a JWK Set or a PEM key)`);
  return trustedKeysFrom({ keys }, (j) => jwkThumbprint(j as Parameters<typeof jwkThumbprint>[0]));
}

/** Why a log in which verify found no line of a decision log at all is nothing to verify. */
function nothingToVerify(target: string, files: readonly LogFile[], report: VerifyReport): string {
  const empty = files.every((f) => statSync(f.path).size === 0);
  if (empty) return `nothing to verify: ${target} is empty${files.length > 1 ? ` (${files.length} empty files)` : ''}; it is not a decision log, or no record was ever written`;
  const first = report.findings.find((x) => x.severity === 'error' && x.file !== null);
  return `${target} is not a decision log: not one line in it is a decision record, checkpoint or file head${first ? ` (${first.message})` : ''}`;
}

/** Witness entries kept in memory by verify: the newest ones (one per checkpoint; ~100 MB at most). */
const MAX_ANCHORS = 100_000;

/** The witness to compare with: --witness, else the default one beside a log directory if it exists. */
function witnessOf(flag: string | undefined, dir: string | null): VerifyOptions['witness'] {
  const path = flag ?? (dir ? defaultWitnessPath(dir) : undefined);
  if (path === undefined) return null;
  if (!existsSync(path)) {
    if (flag !== undefined) throw new NoLogError(`witness ${flag} does not exist`);
    return null;
  }
  const anchors: WitnessedCheckpoint[] = [];
  const problems: Array<{ line: number; problem: string }> = [];
  for (const a of readWitness(path, (line, problem) => problems.push({ line, problem }))) {
    anchors.push(a);
    if (anchors.length > 2 * MAX_ANCHORS) anchors.splice(0, MAX_ANCHORS);
  }
  return { path, anchors: anchors.slice(-MAX_ANCHORS), problems };
}

async function verify(argv: string[], io: LogsIo): Promise<number> {
  const { values: v, positionals } = parseCommandArgs(argv, {
    dir: { type: 'string' }, state: { type: 'string' }, key: { type: 'string' }, witness: { type: 'string' }, strict: { type: 'boolean' }, json: { type: 'boolean' },
  }, true);
  if (v.help) return help(io, 'verify');
  if (positionals.length > 1) throw new UsageError(`give one FILE or DIR, got ${positionals.length}`);
  if (positionals.length === 1 && v.dir) throw new UsageError('give either a FILE|DIR argument or --dir, not both');
  const target = positionals[0] ?? v.dir ?? join(findMesh(v.state, io.env).stateDir, 'decisions');
  if (!existsSync(target)) throw new NoLogError(`${target} does not exist: pass the log directory or file to verify`);
  const whole = statSync(target).isDirectory();
  const files = resolveLogFiles(target);
  if (files.length === 0) throw new NoLogError(`no decision log files (decisions-NNNNNN.jsonl) in ${target}`);

  let keys: TrustedKeys | null = null;
  let keysFromLogDir: string | null = null;
  if (v.key) {
    keys = trustedKeys(v.key, '--key');
  } else {
    const beside = join(whole ? target : join(target, '..'), PUBLIC_KEYS_FILE);
    if (existsSync(beside)) {
      keys = trustedKeys(beside, 'the public key file beside the log,');
      keysFromLogDir = beside;
    }
  }
  const witness = witnessOf(v.witness, whole ? target : null);
  const report = await verifyLogFiles(files, { keys, keysFromLogDir, whole, live: whole && liveWriter(target), witness });
  // Not one line of a decision log: nothing was verified (unless the witness says records were there).
  if (report.records + report.heads + report.checkpoints === 0 && !witness?.anchors.length) throw new NoLogError(nothingToVerify(target, files, report));
  const failed = !report.ok || (!!v.strict && report.findings.some((x) => x.severity === 'warning'));
  io.out(v.json ? safeJson({ target, ...report, ok: !failed }, 2) + '\n' : renderVerify(target, report, !!v.strict));
  return failed ? 1 : 0;
}

function help(io: LogsIo, which: keyof typeof HELP): number {
  io.out(HELP[which]);
  return 0;
}

async function exportCmd(argv: string[], io: LogsIo): Promise<number> {
  const { values: v } = parseCommandArgs(argv, {
    ...SOURCE_OPTIONS, ...FILTER_OPTIONS, format: { type: 'string' }, out: { type: 'string' }, endpoint: { type: 'string' },
    header: { type: 'string', multiple: true }, batch: { type: 'string' }, limit: { type: 'string' },
  });
  if (v.help) return help(io, 'export');
  const format = str(v, 'format');
  if (format !== 'ocsf' && format !== 'otlp') throw new UsageError(`--format must be ocsf or otlp${format === undefined ? '' : `, got "${format}"`}`);
  const endpoint = str(v, 'endpoint');
  if (endpoint !== undefined && format !== 'otlp') throw new UsageError('--endpoint sends OTLP: it goes with --format otlp');
  if (endpoint !== undefined && str(v, 'out') !== undefined) throw new UsageError('give either --endpoint or --out, not both');
  if (endpoint !== undefined) {
    const { logsUrl } = await import('../siem/otlp-http.js');
    try { logsUrl(endpoint); } catch (e) { throw new UsageError(`--endpoint: ${(e as Error).message}`); }
  }
  const headers = headerFlags(Array.isArray(v.header) ? v.header as string[] : []);
  if (Object.keys(headers).length && endpoint === undefined) throw new UsageError('--header goes with --endpoint');
  const f = filterFrom(v, io.now());
  const batch = count('batch', str(v, 'batch'), 500, 1);
  const limit = count('limit', str(v, 'limit'), Infinity, 1);
  const { exportDecisions, ExportError } = await import('../siem/export.js');
  const target = endpoint !== undefined
    ? { kind: 'endpoint' as const, url: endpoint, headers }
    : str(v, 'out') !== undefined ? { kind: 'file' as const, path: str(v, 'out')! } : { kind: 'stdout' as const, write: io.out };
  const match = compileFilter(f);
  const skipped = new SkippedLines();
  async function* matching(): AsyncGenerator<ChainedDecisionRecord> {
    let n = 0;
    for await (const r of records(sourceFrom(v, io), f, skipped)) {
      if (!match(r)) continue;
      yield r;
      if (++n >= limit) return;
    }
  }
  try {
    const n = await exportDecisions(matching(), { format, target, batch, version: TOLLGATE_VERSION });
    reportSkipped(io, 'export', skipped);
    io.err(n === 0 ? 'no matching decisions\n' : `exported ${n} decision${n === 1 ? '' : 's'} as ${format === 'ocsf' ? 'OCSF API Activity events' : 'OTLP log records'}${endpoint ? ` to ${endpoint}` : ''}\n`);
    return 0;
  } catch (e) {
    if (!(e instanceof ExportError)) throw e;
    reportSkipped(io, 'export', skipped);
    io.err(`tollgate logs export: ${e.message}\n`);
    return 1;
  }
}

/** --header K=V flags as a header map. */
function headerFlags(list: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of list) {
    const i = h.indexOf('=');
    if (i < 1) throw new UsageError(`--header must be K=V, got "${h}"`);
    out[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1);
  }
  return out;
}

const SUBCOMMANDS: Record<string, (argv: string[], io: LogsIo) => Promise<number>> = { query, tail, stats, export: exportCmd, verify };

export function createLogsCommand(partial: Partial<LogsIo> = {}): Command {
  const io: LogsIo = { ...STDIO, env: process.env, now: () => new Date(), ...partial };
  return {
    name: 'logs',
    summary: 'Query, tail, summarise and verify decision logs',
    run: (argv) => dispatchTable({ command: 'logs', usage: HELP.logs, io }, SUBCOMMANDS, argv, (e, sub) => {
      if (!(e instanceof NoLogError)) throw e;
      io.err(`tollgate logs ${sub}: ${e.message}\n`);
      return sub === 'verify' ? 2 : 1;
    }),
  };
}

export const logsCommand: Command = createLogsCommand();
