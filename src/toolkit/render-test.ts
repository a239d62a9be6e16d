import { formatRanges, type CoverageSummary } from './coverage.js';
import { verdict } from './decision-diff.js';
import type { PolicyTestReport } from './policy-test.js';
import type { CaseResult } from './scenario-run.js';
import { formatScenarioProblem } from './scenario-types.js';

/** The text report of `tollgate policy test`. Pure: report in, lines out. */

const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

function indentBlock(text: string, pad: string): string {
  return text.split('\n').map((l) => pad + l).join('\n');
}

function renderCase(r: CaseResult, verbose: boolean): string[] {
  const where = `${r.file}:${r.line}`;
  if (r.status === 'pass') return verbose ? [`  ok    ${where}  ${r.name}`] : [];
  if (r.status === 'error') return [`  ERROR ${where}  ${r.name}`, `        ${r.error ?? 'not evaluated'}`];
  const out = [`  FAIL  ${where}  ${r.name}`];
  const w = Math.max(...r.mismatches.map((m) => m.field.length)) + 1;
  for (const m of r.mismatches) {
    out.push(`        ${(m.field + ':').padEnd(w)} expected ${m.expected}`);
    out.push(`        ${''.padEnd(w)} actual   ${m.actual}`);
  }
  const d = r.decision!;
  out.push(`        decision: ${verdict(d.allow)}${d.reasons.length ? '' : ' (no reasons)'}`);
  for (const reason of d.reasons) out.push(`          - ${reason}`);
  for (const b of r.builtinErrors) out.push(`        builtin error during evaluation: ${b}`);
  return out;
}

function renderCoverage(c: NonNullable<PolicyTestReport['coverage']>): string[] {
  const tests = c.tests.coverage;
  const scen = c.scenarios;
  const files = new Set<string>([...(tests?.files ?? []).map((f) => f.file), ...(scen?.files ?? []).map((f) => f.file)]);
  if (files.size === 0) {
    return ['Coverage: not available', ...(c.tests.note ? [`  opa test: ${c.tests.note}`] : []), ...(c.scenarioNote ? [`  scenarios: ${c.scenarioNote}`] : [])];
  }
  const byFile = (s: CoverageSummary | null, f: string) => s?.files.find((x) => x.file === f);
  const pct = (p: number | undefined): string => (p === undefined ? '-' : `${p.toFixed(1)}%`);
  const w = Math.max(...[...files].map((f) => f.length), 'total'.length);
  const out = ['Coverage (lines of the policy files; *_test.rego left out):', `  ${'file'.padEnd(w)}  ${'opa test'.padStart(8)}  ${'scenarios'.padStart(9)}`];
  for (const f of [...files].sort()) {
    const t = byFile(tests, f);
    const s = byFile(scen, f);
    const gaps = t && t.uncovered.length ? `  not covered by Rego tests: lines ${formatRanges(t.uncovered)}` : '';
    out.push(`  ${f.padEnd(w)}  ${pct(t?.percent).padStart(8)}  ${pct(s?.percent).padStart(9)}${gaps}`);
  }
  out.push(`  ${'total'.padEnd(w)}  ${pct(tests?.percent).padStart(8)}  ${pct(scen?.percent).padStart(9)}`);
  if (c.tests.note) out.push(`  opa test: ${c.tests.note}`);
  if (c.scenarioNote) out.push(`  scenarios: ${c.scenarioNote}`);
  return out;
}

export function renderTestReport(r: PolicyTestReport, verbose = false): string {
  const out: string[] = [];
  if (r.rego) {
    const s = r.rego.summary;
    if (r.rego.failure) out.push(`opa test ${r.dir}: could not run`, indentBlock(r.rego.failure, '  '));
    else out.push(`opa test ${r.dir}: ${s.passed} passed, ${s.failed} failed${s.errors ? `, ${s.errors} errors` : ''}${s.skipped ? `, ${s.skipped} skipped` : ''}`);
    for (const t of r.rego.results) {
      const where = t.file ? ` (${t.file}${t.line ? `:${t.line}` : ''})` : '';
      if (t.outcome === 'fail') out.push(`  FAIL  ${t.id}${where}`);
      else if (t.outcome === 'error') out.push(`  ERROR ${t.id}${where}`, `        ${t.error ?? ''}`);
      else if (verbose) out.push(`  ${t.outcome === 'skip' ? 'skip' : 'ok'}    ${t.id}${where}`);
      if (t.output && (t.outcome !== 'pass' || verbose)) out.push(indentBlock(t.output.trimEnd(), '        | '));
    }
  }
  if (r.buildError) {
    out.push(`policy ${r.dir} does not build:`, indentBlock(r.buildError, '  '));
    out.push('', 'FAIL: fix the policy first (scenarios run on the compiled WASM)');
    return out.join('\n') + '\n';
  }

  out.push('');
  const rev = r.revision ? `, policy revision ${r.revision}` : '';
  out.push(`Scenarios (${r.scenarioGlob}: ${plural(r.scenarioFiles.length, 'file')}${rev}):`);
  if (r.problems.length) {
    out.push('  invalid scenario files (their cases did not run):');
    for (const p of r.problems) out.push(`    ${formatScenarioProblem(p)}`);
  }
  for (const c of r.results) out.push(...renderCase(c, verbose));
  if (r.results.length === 0 && r.problems.length === 0) out.push('  no scenarios found');
  const s = r.summary;
  out.push(`  ${s.passed} passed, ${s.failed} failed${s.errors ? `, ${plural(s.errors, 'error')}` : ''}`);

  if (r.crossCheck) {
    const x = r.crossCheck;
    out.push('');
    if (x.error) out.push(`WASM vs interpreter: could not compare: ${x.error}`);
    else if (x.disagreements.length === 0) out.push(`WASM vs interpreter: all ${plural(x.compared, 'evaluated case')} agree`);
    else {
      out.push(`WASM vs interpreter: ${x.disagreements.length} of ${x.compared} cases DISAGREE (the mesh runs the WASM; please report this):`);
      for (const d of x.disagreements) {
        out.push(`  ${d.file}:${d.line}  ${d.name}: ${d.fields.join(', ')} differ${d.timePinned ? ' (this case pins time:, the interpreter uses the current time)' : ''}`);
      }
    }
  }
  if (r.coverage) out.push('', ...renderCoverage(r.coverage));

  const rego = r.rego?.summary;
  const regoText = r.rego?.failure ? 'opa test could not run' : rego ? `opa test ${rego.passed}/${rego.total - rego.skipped} passed` : '';
  out.push('', `${r.ok ? 'PASS' : 'FAIL'}: ${regoText}; scenarios ${s.passed}/${s.cases} passed${r.problems.length ? `; ${plural(r.problems.length, 'problem')} in scenario files` : ''}`);
  return out.join('\n') + '\n';
}
