import type { Registry } from 'prom-client';
import { scrapedCounter, type Sample } from './scrape.js';

/** What ext_proc (the response path) has done since start; monotonic counters. */
export interface ExtProcStats {
  streams: number;
  /** Responses of known calls that were processed. */
  responses: number;
  /** Streams whose decision id was missing or unknown (refused before reaching the server). */
  unknownDecision: number;
  /** Responses that may carry a list but could not be read, replaced by an error (fail closed). */
  unfilterable: number;
  /** Internal errors (the response was passed through). */
  errors: number;
  /** Result tokens charged (default encoding). */
  chargedTokens: number;
  /** List items removed by policy. */
  filteredItems: number;
  /** Bodies too large to parse (counted as raw text, not filtered). */
  oversizeBodies: number;
}

const NONE: readonly Sample[] = [];

const COUNTERS: ReadonlyArray<[keyof ExtProcStats, string, string]> = [
  ['streams', 'extproc_streams_total', 'ext_proc streams Envoy opened (one per governed HTTP response).'],
  ['responses', 'extproc_responses_total', 'Responses of known calls processed on the response path.'],
  ['unknownDecision', 'extproc_unknown_decision_total', 'Streams without a known decision id (refused before reaching the server).'],
  ['unfilterable', 'extproc_unfilterable_total', 'Answers that may carry a list but could not be read, withheld and replaced by an error (fail closed).'],
  ['errors', 'extproc_errors_total', 'Internal errors on the response path (the response was passed through unfiltered and uncounted).'],
  ['chargedTokens', 'extproc_charged_tokens_total', 'Result tokens counted on the response path (default encoding).'],
  ['filteredItems', 'extproc_filtered_items_total', 'Items policy removed from tools/prompts/resources lists.'],
  ['oversizeBodies', 'extproc_oversize_bodies_total', 'Response bodies over the buffer limit (counted as raw text, not filtered).'],
];

/** ext_proc's counters, read at scrape time; absent until authz has an ext_proc handler. */
export function registerExtProcMetrics(registry: Registry, prefix: string, read: () => ExtProcStats | null): void {
  for (const [field, name, help] of COUNTERS) {
    scrapedCounter({ registry, name: `${prefix}${name}`, help, read: () => { const s = read(); return s ? [{ value: s[field] }] : NONE; } });
  }
}
