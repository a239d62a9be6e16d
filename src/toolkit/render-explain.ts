import type { Decision } from '../contract/policy.js';
import { verdict } from './decision-diff.js';
import type { ExplainResult } from './explain.js';
import type { ContributingRule } from './trace.js';

/** The text of `tollgate policy explain`. Pure. */

function describeCall(r: ExplainResult): string[] {
  const m = r.input.mcp;
  const id = r.input.identity;
  const who = id.authenticated
    ? [id.sub, id.team ? `team ${id.team}` : null, id.groups.length ? `groups ${id.groups.join(',')}` : null, id.agent ? `agent ${id.agent}` : null].filter(Boolean).join(', ')
    : 'no verified identity';
  const what = m.method === null ? `HTTP ${r.input.request.method} (transport)` : m.tool ? `${m.method} ${m.tool}` : m.method;
  const out = [`Call:  ${who} → ${what} on ${m.server} (namespace ${m.namespace})`];
  if (m.arguments) out.push(`       arguments: ${JSON.stringify(m.arguments)}`);
  out.push(`       at ${new Date(Number(r.nowNs / 1_000_000n)).toISOString()}`);
  return out;
}

function describeDecision(d: Decision): string[] {
  const out: string[] = [];
  for (const reason of d.reasons) out.push(`    - ${reason}`);
  for (const [k, v] of Object.entries(d.headers)) out.push(`    header ${k}: ${v}`);
  if (d.httpStatus !== null) out.push(`    http_status: ${d.httpStatus}`);
  if (d.mask.length) out.push(`    mask: ${d.mask.join(', ')}`);
  if (d.cost !== null) out.push(`    cost: ${d.cost}`);
  return out;
}

const shortName = (rule: string): string => rule.split('.').pop() ?? rule;

/** The head line, with the rule's name in front when the line does not show it (else branches). */
function headText(x: ContributingRule): string {
  const head = x.head.replace(/^}\s*/, '');
  const name = shortName(x.rule);
  return new RegExp(`^(default\\s+)?${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\b`).test(head) ? head : `${name}: ${head}`;
}

export function renderExplain(r: ExplainResult): string {
  const out = [...describeCall(r), ''];
  out.push(`WASM (what the mesh runs, revision ${r.revision}): ${verdict(r.wasm.allow)}`);
  out.push(...describeDecision(r.wasm));
  for (const b of r.builtinErrors) out.push(`    builtin error during evaluation: ${b}`);
  if (r.interpreter) {
    const agree = r.disagreement.length === 0;
    out.push(`Interpreter (opa eval on the Rego source): ${verdict(r.interpreter.allow)}${agree ? ' — agrees with the WASM' : ''}`);
    if (!agree) {
      out.push(`  WARNING: WASM and interpreter disagree on ${r.disagreement.join(', ')}. The mesh answers with the WASM decision.`);
      out.push(...describeDecision(r.interpreter));
    }
  } else {
    out.push(`Interpreter: could not evaluate: ${r.interpreterError ?? 'unknown error'}`);
  }

  if (r.rules.length) {
    out.push('', 'Rules that contributed (their body held for this call):');
    const own = r.rules.filter((x) => x.inQueriedPackage);
    const w = Math.max(0, ...own.map((x) => `${x.file}:${x.line}`.length));
    for (const x of own) out.push(`  ${`${x.file}:${x.line}`.padEnd(w)}  ${headText(x)}${x.times > 1 ? `   (×${x.times})` : ''}`);
    const others = r.rules.filter((x) => !x.inQueriedPackage);
    if (others.length) {
      // Library helpers are many and small: one line per file keeps the package's own rules readable.
      out.push(own.length ? '  used from other packages:' : '  from:');
      for (const file of [...new Set(others.map((x) => x.file))]) {
        const names = new Map<string, string[]>();
        for (const x of others.filter((y) => y.file === file)) {
          const n = shortName(x.rule);
          names.set(n, [...(names.get(n) ?? []), `${x.line}${x.times > 1 ? ` ×${x.times}` : ''}`]);
        }
        out.push(`    ${file}: ${[...names].map(([n, ls]) => `${n} (${ls.join(', ')})`).join(', ')}`);
      }
    }
  } else if (r.interpreter) {
    out.push('', 'No rule body held for this call: the decision comes from defaults.');
  }
  if (r.notes.length) {
    out.push('', 'Notes (trace() calls):');
    for (const n of r.notes) out.push(`  ${n.file}:${n.line}  ${n.message}`);
  }
  if (r.pretty !== null) out.push('', 'opa eval trace:', r.pretty);
  return out.join('\n') + '\n';
}
