import type { InputRef } from './input-deps.js';
import type { ChangeGroups, Group, ReplayReport } from './replay.js';

/** The text of `tollgate policy replay`. Pure. */

function groupLines(title: string, groups: Group[], top: number): string[] {
  if (groups.length === 0) return [];
  const shown = groups.slice(0, top);
  const w = Math.min(60, Math.max(...shown.map((g) => g.key.length)));
  const cut = (s: string): string => (s.length > w ? s.slice(0, w - 1) + '…' : s);
  const out = [`  by ${title}:`];
  for (const g of shown) out.push(`    ${String(g.count).padStart(5)}  ${cut(g.key).padEnd(w)}  e.g. ${g.examples.join(', ')}`);
  if (groups.length > top) out.push(`    … ${groups.length - top} more`);
  return out;
}

function changeLines(title: string, c: ChangeGroups, reasonTitle: string, top: number): string[] {
  if (c.count === 0) return [];
  return ['', `${title} (${c.count}):`, ...groupLines('tool', c.byTool, top), ...groupLines('team', c.byTeam, top), ...groupLines(reasonTitle, c.byReason, top)];
}

export interface ReplayHeader {
  source: string;
  policies: string;
  revision: string;
  reads: InputRef[];
}

export function renderReplay(r: ReplayReport, h: ReplayHeader, top = 10): string {
  const out: string[] = [];
  out.push(`Replayed ${r.replayed} of ${r.total} recorded decisions from ${h.source} under ${h.policies} (revision ${h.revision}):`);
  const n = (x: number): string => String(x).padStart(7);
  out.push(`  newly denied   ${n(r.newlyDenied.count)}`);
  out.push(`  newly allowed  ${n(r.newlyAllowed.count)}`);
  const notes = [
    r.reasonsChanged ? `${r.reasonsChanged} still denied with different reasons` : null,
    r.sameRevision ? `${r.sameRevision} decided by this same revision` : null,
  ].filter(Boolean);
  out.push(`  unchanged      ${n(r.unchanged)}${notes.length ? `   (${notes.join('; ')})` : ''}`);
  out.push(`  uncertain      ${n(r.uncertain.count)}${r.uncertain.count ? '   (masked fields the new policy may read; not counted above)' : ''}`);
  out.push(`  skipped        ${n(r.skipped.count)}${r.skipped.count ? '   (no policy decision to compare with)' : ''}`);

  out.push(...changeLines('Newly denied', r.newlyDenied, 'new reason', top));
  out.push(...changeLines('Newly allowed', r.newlyAllowed, 'reason they were denied', top));

  if (r.uncertain.count) {
    out.push('', `Uncertain (${r.uncertain.count}): the log has these fields masked, and the new policy may read them, so the replay cannot tell:`);
    out.push(...groupLines('masked field', r.uncertain.byField, top));
    for (const c of r.uncertain.cases) {
      const change = c.was.allow === c.now.allow ? `still ${c.now.allow ? 'allowed' : 'denied'} on the masked input` : `${c.was.allow ? 'allowed' : 'denied'} then, ${c.now.allow ? 'allowed' : 'denied'} on the masked input`;
      out.push(`    ${c.decisionId}  ${c.tool}  team ${c.team}: uncertain: depends on masked field ${c.uncertain!.join(', ')} (${change})`);
    }
    if (r.uncertain.count > r.uncertain.cases.length) out.push(`    … ${r.uncertain.count - r.uncertain.cases.length} more (--json lists the counts by field)`);
  }
  if (r.skipped.count) out.push('', `Skipped (${r.skipped.count}):`, ...groupLines('reason', r.skipped.byReason, top));
  const reads = h.reads.map((x) => (x.length ? `input.${x.join('.')}` : 'input (all of it)'));
  out.push('', `The new policy may read: ${reads.join(', ') || 'nothing from input'}`);
  out.push('Look a decision up with: tollgate logs query --id ID');
  return out.join('\n') + '\n';
}
