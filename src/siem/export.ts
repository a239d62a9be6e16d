import { closeSync, openSync, writeSync } from 'node:fs';
import type { ChainedDecisionRecord } from '../decisionlog/types.js';
import { toOcsfApiActivity } from './ocsf.js';
import { otlpLogsRequest } from './otlp-logs.js';
import { logsUrl, postOtlpLogs } from './otlp-http.js';

export type ExportTarget =
  | { kind: 'stdout'; write: (s: string) => void }
  | { kind: 'file'; path: string }
  | { kind: 'endpoint'; url: string; headers: Readonly<Record<string, string>> };

/** The destination failed (endpoint refused or unreachable, file not writable): exit 1, not a crash. */
export class ExportError extends Error {}

export interface ExportOptions {
  format: 'ocsf' | 'otlp';
  target: ExportTarget;
  /** Records per OTLP request (or per OTLP/JSON line). */
  batch: number;
  version: string;
}

/** A line writer for stdout or a file (appended, created 0600: the records are audit data). */
function lineWriter(t: Exclude<ExportTarget, { kind: 'endpoint' }>): { write: (line: string) => void; close: () => void } {
  if (t.kind === 'stdout') return { write: (line) => t.write(line + '\n'), close: () => undefined };
  let fd: number;
  try { fd = openSync(t.path, 'a', 0o600); } catch (e) { throw new ExportError(`cannot write ${t.path}: ${(e as Error).message}`); }
  return { write: (line) => { writeSync(fd, line + '\n'); }, close: () => closeSync(fd) };
}

/**
 * Streams records out as OCSF events or OTLP log records; holds at most one batch in memory.
 * Returns how many records were exported. An endpoint failure stops at the failing batch.
 */
export async function exportDecisions(records: AsyncIterable<ChainedDecisionRecord>, o: ExportOptions): Promise<number> {
  const t = o.target;
  if (t.kind === 'endpoint' && o.format !== 'otlp') throw new Error('only OTLP can be sent to an endpoint');
  let url: string | null = null;
  try { url = t.kind === 'endpoint' ? logsUrl(t.url) : null; } catch (e) { throw new ExportError((e as Error).message); }
  const out = t.kind === 'endpoint' ? null : lineWriter(t);
  let n = 0;
  let pending: ChainedDecisionRecord[] = [];
  const flush = async (): Promise<void> => {
    if (pending.length === 0) return;
    const body = otlpLogsRequest(pending, o.version, BigInt(Date.now()) * 1_000_000n);
    if (url !== null && t.kind === 'endpoint') {
      try {
        await postOtlpLogs(url, body, t.headers);
      } catch (e) {
        const cause = (e as Error).cause instanceof Error ? ` (${((e as Error).cause as Error).message})` : '';
        throw new ExportError(`${(e as Error).message}${cause}; ${n} records were sent before this batch of ${pending.length}`);
      }
    }
    else out!.write(JSON.stringify(body));
    n += pending.length;
    pending = [];
  };
  try {
    for await (const r of records) {
      if (o.format === 'ocsf') {
        out!.write(JSON.stringify(toOcsfApiActivity(r)));
        n++;
        continue;
      }
      pending.push(r);
      if (pending.length >= o.batch) await flush();
    }
    await flush();
  } finally {
    out?.close();
  }
  return n;
}
