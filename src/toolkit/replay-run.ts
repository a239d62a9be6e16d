import { existsSync } from 'node:fs';
import { resolveLogFiles } from '../decisionlog/files.js';
import { readStreamRecords } from '../decisionlog/nats-reader.js';
import { compileFilter, type RecordFilter } from '../decisionlog/query.js';
import { unfoldRecord } from '../decisionlog/fold.js';
import { SkippedLines } from '../decisionlog/lines.js';
import { readRecordsOfFiles } from '../decisionlog/reader.js';
import type { DecisionRecordDraft } from '../decisionlog/types.js';
import { loadPolicyFromDir } from '../policy/engine.js';
import { policyInputRefs, type InputRef } from './input-deps.js';
import { classify, ReplayAggregator, skipReason, type ReplayReport } from './replay.js';
import type { EntrypointMode } from './scenario-types.js';

/** `tollgate policy replay`: recorded decisions from a log, re-decided by the new policy's WASM. */

export type LogSource =
  | { kind: 'path'; path: string }
  | { kind: 'nats'; url: string; stream: string; subjectPrefix: string };

export const DEFAULT_STREAM = 'TOLLGATE_DECISIONS';
export const DEFAULT_SUBJECT_PREFIX = 'tollgate.decisions';

export function logSource(arg: string, stream = DEFAULT_STREAM, subjectPrefix = DEFAULT_SUBJECT_PREFIX): LogSource {
  return /^(nats|tls|wss?):\/\//.test(arg) ? { kind: 'nats', url: arg, stream, subjectPrefix } : { kind: 'path', path: arg };
}

/**
 * Recorded decisions of a log. Lines that are not records of the log and records with a field of
 * the wrong type are skipped and counted in `skipped` (with where the first is), for the caller to
 * report; files in which not one line is a line of a decision log are an error.
 */
export async function* readLogRecords(src: LogSource, since: Date | null, skipped = new SkippedLines()): AsyncGenerator<DecisionRecordDraft> {
  if (src.kind === 'nats') {
    for await (const r of readStreamRecords({ url: src.url, stream: src.stream, subjectPrefix: src.subjectPrefix, since, skipped })) yield r.record;
    return;
  }
  if (!existsSync(src.path)) throw new Error(`no decision log at ${src.path}: give a log directory, one decisions-*.jsonl file, or nats://HOST:PORT`);
  const files = resolveLogFiles(src.path);
  if (files.length === 0) throw new Error(`${src.path} holds no decision log files (decisions-*.jsonl)`);
  for (const r of readRecordsOfFiles(files, skipped)) yield r.record;
  if (skipped.nothingReadable) {
    const first = skipped.firstUnreadable!;
    throw new Error(`${src.path} holds no decision log: none of its ${skipped.unreadable} line(s) is a decision record, checkpoint or file head (${first.where}: ${first.problem})`);
  }
}

export interface ReplayOptions {
  source: LogSource;
  policies: string;
  mode: EntrypointMode;
  filter: RecordFilter;
  examples: number;
}

export interface ReplayRun {
  report: ReplayReport;
  revision: string;
  /** Input paths the new policy may read (for the uncertainty report). */
  reads: InputRef[];
  /** What reading the log skipped (`skipped 2 malformed records (file:line: ...)`), or null. */
  skipped: string | null;
}

/**
 * Evaluation time of a record: its timestamp (the wall clock when authz decided). Not
 * input.request.time_ns, which authz currently fills from a monotonic clock.
 */
function recordTimeNs(r: DecisionRecordDraft): bigint {
  const ms = Date.parse(r.timestamp);
  if (Number.isFinite(ms)) return BigInt(ms) * 1_000_000n;
  const t = r.input?.request?.time_ns;
  return typeof t === 'number' && Number.isFinite(t) && t > 0 ? BigInt(Math.trunc(t)) : BigInt(Date.now()) * 1_000_000n;
}

export async function replayDecisions(o: ReplayOptions): Promise<ReplayRun> {
  const [policy, reads] = await Promise.all([loadPolicyFromDir(o.policies, { entrypoint: o.mode }), policyInputRefs(o.policies, o.mode)]);
  const match = compileFilter(o.filter);
  const agg = new ReplayAggregator(o.examples);
  const skipped = new SkippedLines();
  for await (const r of readLogRecords(o.source, o.filter.since ?? null, skipped)) {
    if (!match(r)) continue;
    const skip = skipReason(r);
    if (skip) {
      agg.skip(r, skip);
      continue;
    }
    // The policy reads every copy of the arguments and headers, so the ones the record folded are put back.
    let full: DecisionRecordDraft;
    try {
      full = unfoldRecord(r);
    } catch (e) {
      agg.skip(r, `recorded input cannot be restored: ${(e as Error).message}`);
      continue;
    }
    // Time-dependent rules (change windows, token expiry) judge the call as of when it was made.
    const next = policy.evaluate(full.input!, { nowNs: recordTimeNs(full) });
    agg.add(classify(full, next, reads, policy.revision));
  }
  return { report: agg.result(), revision: policy.revision, reads, skipped: skipped.report() };
}
