/**
 * What a full OPA trace (`opa eval --explain full --format json`) says about one evaluation: the
 * rules whose body succeeded ("Exit" of a rule) and the notes written with trace(). Pure: the
 * caller passes the policy sources to show each rule's head line.
 */

export interface ContributingRule {
  file: string;
  line: number;
  /** data.<package>.<rule>, when the package is known. */
  rule: string;
  /** The source line of the rule's head, trimmed. */
  head: string;
  /** How many times the rule succeeded (a function may be called many times). */
  times: number;
  /** Declared in the package of the queried rule (rather than a library). */
  inQueriedPackage: boolean;
}

export interface TraceNote {
  file: string;
  line: number;
  message: string;
}

interface RawEvent {
  Op?: unknown;
  Node?: unknown;
  Location?: { file?: unknown; row?: unknown };
  Message?: unknown;
}

interface RawTerm {
  type?: unknown;
  value?: unknown;
}

/** "denials", "check", "a.b" from a rule head's ref. */
function headName(node: unknown): string | null {
  if (typeof node !== 'object' || node === null) return null;
  const head = (node as { head?: { ref?: RawTerm[]; name?: unknown } }).head;
  if (!head) return null;
  if (Array.isArray(head.ref) && head.ref.length) {
    const parts: string[] = [];
    for (const t of head.ref) {
      if ((t.type === 'var' || t.type === 'string') && typeof t.value === 'string') parts.push(t.value);
      else break;
    }
    if (parts.length) return parts.join('.');
  }
  return typeof head.name === 'string' ? head.name : null;
}

/** The package a Rego source declares. */
export function packageOf(source: string): string | null {
  const m = /^\s*package\s+([\w.]+)/m.exec(source);
  return m ? m[1]! : null;
}

export function contributingRules(trace: readonly unknown[], sources: ReadonlyMap<string, string>, queriedPackage: string | null): ContributingRule[] {
  const byPlace = new Map<string, ContributingRule>();
  const order: string[] = [];
  for (const raw of trace as RawEvent[]) {
    if (raw.Op !== 'Exit') continue;
    const name = headName(raw.Node);
    const file = raw.Location?.file;
    const line = raw.Location?.row;
    if (name === null || typeof file !== 'string' || !file || typeof line !== 'number') continue;
    const key = `${file}:${line}`;
    const seen = byPlace.get(key);
    if (seen) {
      seen.times++;
      continue;
    }
    const src = sources.get(file);
    const pkg = src ? packageOf(src) : null;
    const head = src?.split('\n')[line - 1]?.trim() ?? name;
    byPlace.set(key, { file, line, rule: pkg ? `data.${pkg}.${name}` : name, head, times: 1, inQueriedPackage: pkg !== null && pkg === queriedPackage });
    order.push(key);
  }
  const rules = order.map((k) => byPlace.get(k)!);
  // The queried package's own rules first (that is where the decision is made), then libraries.
  return rules.sort((a, b) => Number(b.inQueriedPackage) - Number(a.inQueriedPackage) || a.file.localeCompare(b.file) || a.line - b.line);
}

export function traceNotes(trace: readonly unknown[]): TraceNote[] {
  const out: TraceNote[] = [];
  for (const raw of trace as RawEvent[]) {
    if (raw.Op !== 'Note' || typeof raw.Message !== 'string') continue;
    const file = typeof raw.Location?.file === 'string' ? raw.Location.file : '';
    const line = typeof raw.Location?.row === 'number' ? raw.Location.row : 0;
    out.push({ file, line, message: raw.Message });
  }
  return out;
}

/** Files the trace mentions, so the caller can read just those. */
export function traceFiles(trace: readonly unknown[]): string[] {
  const files = new Set<string>();
  for (const raw of trace as RawEvent[]) {
    const f = raw.Location?.file;
    if (typeof f === 'string' && f) files.add(f);
  }
  return [...files].sort();
}
