import type { ToolDefinition } from './definition.js';
import type { Finding } from './scan.js';

/** What `tollgate tools pending|diff` shows: pure, from the two buckets' contents. */

export interface SeenTool {
  server: string;
  tool: string;
  sha256: string;
  definition: ToolDefinition;
  findings: Finding[];
  seen_at: string;
}

export interface PinnedTool {
  server: string;
  tool: string;
  sha256: string;
  definition: ToolDefinition | null;
  approver: string;
  at: string;
}

export interface PendingTool extends SeenTool {
  status: 'new' | 'changed';
  approved_sha256: string | null;
}

export function pendingTools(seen: readonly SeenTool[], pins: readonly PinnedTool[]): PendingTool[] {
  const byKey = new Map(pins.map((p) => [`${p.server}\u0000${p.tool}`, p]));
  const out: PendingTool[] = [];
  for (const s of seen) {
    const pin = byKey.get(`${s.server}\u0000${s.tool}`);
    if (pin && pin.sha256 === s.sha256) continue;
    out.push({ ...s, status: pin ? 'changed' : 'new', approved_sha256: pin?.sha256 ?? null });
  }
  return out.sort((a, b) => a.server.localeCompare(b.server) || a.tool.localeCompare(b.tool));
}

/** Pretty JSON lines of one member of a definition, for a line diff. */
function lines(v: unknown): string[] {
  if (v === null || v === undefined) return [];
  return (typeof v === 'string' ? v : JSON.stringify(v, null, 2)).split('\n');
}

/**
 * A readable diff of two versions of a text: the common head and tail are kept as context and the
 * middle is shown as removed / added lines. Linear in the input; good enough for descriptions and
 * schemas, which change in one place at a time.
 */
export function lineDiff(before: string[], after: string[]): string[] {
  let head = 0;
  while (head < before.length && head < after.length && before[head] === after[head]) head++;
  let tail = 0;
  while (tail < before.length - head && tail < after.length - head && before[before.length - 1 - tail] === after[after.length - 1 - tail]) tail++;
  if (head === before.length && head === after.length) return [];
  const out: string[] = [];
  for (const l of before.slice(Math.max(0, head - 2), head)) out.push(`  ${l}`);
  for (const l of before.slice(head, before.length - tail)) out.push(`- ${l}`);
  for (const l of after.slice(head, after.length - tail)) out.push(`+ ${l}`);
  for (const l of after.slice(after.length - tail, after.length - tail + 2)) out.push(`  ${l}`);
  return out;
}

/** Diff of every member of a definition that changed; `before` null: everything is new. */
export function definitionDiff(before: ToolDefinition | null, after: ToolDefinition): string[] {
  const out: string[] = [];
  for (const k of ['title', 'description', 'inputSchema', 'outputSchema', 'annotations'] as const) {
    const d = lineDiff(lines(before?.[k]), lines(after[k]));
    if (d.length) out.push(`${k}:`, ...d.map((l) => `  ${l}`));
  }
  return out;
}

/** Makes hidden characters visible in terminal output (the scanner's whole point). */
export function visible(s: string): string {
  let out = '';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    out += (cp < 32 && cp !== 10) || (cp >= 0x7f && cp < 0xa0) || (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x202a && cp <= 0x202e)
      || (cp >= 0x2060 && cp <= 0x2069) || cp === 0xfeff || (cp >= 0xe0000 && cp <= 0xe007f)
      ? `<U+${cp.toString(16).toUpperCase().padStart(4, '0')}>` : ch;
  }
  return out;
}
