import { parsePointer } from '../decisionlog/pointer.js';
import { subjectOf } from '../decisionlog/query.js';
import type { DecisionRecordDraft } from '../decisionlog/types.js';
import type { Decision } from '../contract/policy.js';
import { mayRead, type InputRef } from './input-deps.js';

/**
 * What-if over recorded decisions: classifying one record's new decision against the recorded
 * one, and the counts and groupings of a whole replay. Pure; replay-run.ts feeds it.
 *
 * A record's input is the input after masking. Where masking removed or replaced a field the new
 * policy may read, the new decision is computed on something the real call did not send, so the
 * record is reported as uncertain (with the fields) instead of being counted as a change or not:
 * - a masked tool argument the policy may read makes the result uncertain whatever it is
 *   (arguments are what masking hides and what policies inspect: a value check could flip it);
 * - any other masked field the policy may read (headers, claims, ...) makes a *changed* result
 *   uncertain: the change may come from the masking rather than from the policy edit.
 */

export type ReplayOutcome = 'newly_denied' | 'newly_allowed' | 'unchanged';

/** Why a record cannot be replayed, or null when it can. */
export function skipReason(r: DecisionRecordDraft): string | null {
  const code = r.result.code;
  if (r.input === null || r.input === undefined) {
    switch (code) {
      case -32001: return 'refused before policy: missing or invalid token';
      case -32700: case -32600: return 'refused before policy: malformed request';
      case -32602: return 'refused before policy: invalid params';
      case -32005: return 'refused before policy: request too large';
      case -32006: return 'authz could not decide (no policy loaded or internal error)';
      default: return 'no policy input recorded';
    }
  }
  // The budget gate answers before the policy: the recorded result is not a policy decision.
  if (code === -32004) return 'decided by a token budget before policy';
  return null;
}

const ARGUMENT_ROOTS: string[][] = [['mcp', 'arguments'], ['mcp', 'params', 'arguments'], ['parsed_body', 'params', 'arguments']];

/** A field's tokens after "input", with the copies of tool arguments folded onto mcp.arguments. */
export function canonicalField(tokens: readonly string[]): { tokens: string[]; argument: boolean } {
  let t = [...tokens];
  // Inside a batch the body is an array: parsed_body/<i>/params/arguments/...
  if (t[0] === 'parsed_body' && /^\d+$/.test(t[1] ?? '')) t = ['parsed_body', ...t.slice(2)];
  for (const root of ARGUMENT_ROOTS) {
    if (root.every((p, i) => t[i] === p) && t.length > root.length) return { tokens: ['mcp', 'arguments', ...t.slice(root.length)], argument: true };
  }
  if (t[0] === 'attributes' && t[1] === 'request' && t[2] === 'http' && t[3] === 'headers') return { tokens: ['request', 'headers', ...t.slice(4)], argument: false };
  return { tokens: t, argument: false };
}

export interface HiddenRead {
  /** Pointers of masked fields the policy may read, de-duplicated across their copies. */
  fields: string[];
  argument: boolean;
}

/** Masked or erased fields of a record that a policy reading `refs` may depend on. */
export function hiddenFieldsRead(r: Pick<DecisionRecordDraft, 'erased' | 'masked'>, refs: readonly InputRef[]): HiddenRead {
  const fields = new Set<string>();
  let argument = false;
  for (const p of [...(r.erased ?? []), ...(r.masked ?? [])]) {
    let tokens: string[];
    try {
      tokens = parsePointer(p);
    } catch {
      continue;
    }
    if (tokens[0] !== 'input') continue;
    const field = tokens.slice(1);
    if (!refs.some((ref) => mayRead(ref, field))) continue;
    const c = canonicalField(field);
    fields.add('/input/' + c.tokens.map((x) => x.replace(/~/g, '~0').replace(/\//g, '~1')).join('/'));
    if (c.argument) argument = true;
  }
  return { fields: [...fields].sort(), argument };
}

function sameReasons(a: readonly string[], b: readonly string[]): boolean {
  const sb = new Set(b);
  return new Set(a).size === sb.size && a.every((x) => sb.has(x));
}

export interface ReplayCase {
  decisionId: string;
  timestamp: string;
  tool: string;
  server: string;
  team: string;
  sub: string | null;
  was: { allow: boolean; reasons: string[] };
  now: { allow: boolean; reasons: string[] };
  outcome: ReplayOutcome;
  /** Both deny, for different reasons. */
  reasonsChanged: boolean;
  /** Non-null: the result depends on fields the log does not have; these ones. */
  uncertain: string[] | null;
  /** The record was decided by this very policy revision: its result is known to stand. */
  sameRevision: boolean;
}

export function classify(r: DecisionRecordDraft, next: Decision, refs: readonly InputRef[], newRevision: string): ReplayCase {
  const was = { allow: r.result.allow, reasons: r.result.reasons };
  const oldRevision = r.bundles?.tollgate?.revision ?? Object.values(r.bundles ?? {})[0]?.revision ?? null;
  const sameRevision = oldRevision !== null && oldRevision === newRevision;
  // Same policy, same (unmasked) input, same time: the recorded decision is the answer.
  const now = sameRevision ? was : { allow: next.allow, reasons: next.reasons };
  const outcome: ReplayOutcome = was.allow === now.allow ? 'unchanged' : now.allow ? 'newly_allowed' : 'newly_denied';
  const reasonsChanged = !was.allow && !now.allow && !sameReasons(was.reasons, now.reasons);
  const changed = outcome !== 'unchanged' || reasonsChanged;
  const hidden = sameRevision ? { fields: [], argument: false } : hiddenFieldsRead(r, refs);
  const uncertain = hidden.fields.length && (hidden.argument || changed) ? hidden.fields : null;
  return {
    decisionId: r.decision_id, timestamp: r.timestamp, tool: `${r.mcp.server}/${subjectOf(r)}`, server: r.mcp.server,
    team: r.identity.team ?? '(no team)', sub: r.identity.sub, was, now, outcome, reasonsChanged, uncertain, sameRevision,
  };
}

export interface Group {
  key: string;
  count: number;
  /** A few decision ids, to look up with `tollgate logs query --id`. */
  examples: string[];
}

export interface ChangeGroups {
  count: number;
  byTool: Group[];
  byTeam: Group[];
  byReason: Group[];
}

export interface ReplayReport {
  /** Records read (after filters). */
  total: number;
  replayed: number;
  newlyDenied: ChangeGroups;
  newlyAllowed: ChangeGroups;
  unchanged: number;
  /** Of the unchanged: still denied, with different reasons. */
  reasonsChanged: number;
  /** Of the unchanged: decided by the same policy revision. */
  sameRevision: number;
  uncertain: { count: number; byField: Group[]; cases: ReplayCase[] };
  skipped: { count: number; byReason: Group[] };
}

class Grouper {
  private readonly groups = new Map<string, Group>();
  constructor(private readonly examples: number) {}
  add(key: string, id: string): void {
    const g = this.groups.get(key) ?? { key, count: 0, examples: [] };
    g.count++;
    if (g.examples.length < this.examples) g.examples.push(id);
    this.groups.set(key, g);
  }
  list(): Group[] {
    return [...this.groups.values()].sort((a, b) => b.count - a.count || a.key.localeCompare(b.key));
  }
}

class ChangeGrouper {
  count = 0;
  readonly tool: Grouper;
  readonly team: Grouper;
  readonly reason: Grouper;
  constructor(examples: number) {
    this.tool = new Grouper(examples);
    this.team = new Grouper(examples);
    this.reason = new Grouper(examples);
  }
  add(c: ReplayCase, reasons: string[]): void {
    this.count++;
    this.tool.add(c.tool, c.decisionId);
    this.team.add(c.team, c.decisionId);
    for (const r of new Set(reasons.length ? reasons : ['(no reason given)'])) this.reason.add(r, c.decisionId);
  }
  result(): ChangeGroups {
    return { count: this.count, byTool: this.tool.list(), byTeam: this.team.list(), byReason: this.reason.list() };
  }
}

/** Accumulates a replay; `examples` decision ids are kept per group, `uncertainCases` in full. */
export class ReplayAggregator {
  private total = 0;
  private replayed = 0;
  private unchanged = 0;
  private reasonsChanged = 0;
  private sameRevision = 0;
  private readonly denied: ChangeGrouper;
  private readonly allowed: ChangeGrouper;
  private readonly uncertainFields: Grouper;
  private readonly uncertainCases: ReplayCase[] = [];
  private uncertainCount = 0;
  private readonly skipped: Grouper;
  private skippedCount = 0;

  constructor(private readonly examples = 3, private readonly uncertainCasesKept = 20) {
    this.denied = new ChangeGrouper(examples);
    this.allowed = new ChangeGrouper(examples);
    this.uncertainFields = new Grouper(examples);
    this.skipped = new Grouper(examples);
  }

  skip(r: DecisionRecordDraft, reason: string): void {
    this.total++;
    this.skippedCount++;
    this.skipped.add(reason, r.decision_id);
  }

  add(c: ReplayCase): void {
    this.total++;
    this.replayed++;
    if (c.uncertain) {
      this.uncertainCount++;
      for (const f of c.uncertain) this.uncertainFields.add(f, c.decisionId);
      if (this.uncertainCases.length < this.uncertainCasesKept) this.uncertainCases.push(c);
      return;
    }
    if (c.outcome === 'newly_denied') this.denied.add(c, c.now.reasons);
    else if (c.outcome === 'newly_allowed') this.allowed.add(c, c.was.reasons);
    else {
      this.unchanged++;
      if (c.reasonsChanged) this.reasonsChanged++;
      if (c.sameRevision) this.sameRevision++;
    }
  }

  result(): ReplayReport {
    return {
      total: this.total, replayed: this.replayed,
      newlyDenied: this.denied.result(), newlyAllowed: this.allowed.result(),
      unchanged: this.unchanged, reasonsChanged: this.reasonsChanged, sameRevision: this.sameRevision,
      uncertain: { count: this.uncertainCount, byField: this.uncertainFields.list(), cases: this.uncertainCases },
      skipped: { count: this.skippedCount, byReason: this.skipped.list() },
    };
  }
}
