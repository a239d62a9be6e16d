import { parser } from '@prometheus-io/lezer-promql';
import type { SyntaxNode } from '@lezer/common';

/**
 * What a PromQL expression refers to, read from the parse tree of Prometheus's own PromQL grammar
 * (@prometheus-io/lezer-promql, the parser Prometheus's UI uses): a real parser rather than a
 * regex, so functions, keywords, durations and strings are never mistaken for metric names.
 */
export interface PromqlRefs {
  /** Syntax errors (the grammar's error nodes), with the text around each. */
  errors: string[];
  /** Each vector selector's metric name and the label names it matches on. */
  selectors: Array<{ metric: string; labels: string[] }>;
  /** Labels named in `by (...)` / `without (...)` / `on (...)` / `ignoring (...)`. */
  grouping: string[];
}

/** Grafana's interval variables, replaced by a duration so the query is plain PromQL. */
export function expandGrafanaVariables(expr: string): string {
  return expr.replaceAll('$__rate_interval', '5m').replaceAll('$__interval', '1m').replaceAll('$__range', '1h');
}

function children(n: SyntaxNode, name: string): SyntaxNode[] {
  const out: SyntaxNode[] = [];
  for (let c = n.firstChild; c; c = c.nextSibling) if (c.name === name) out.push(c);
  return out;
}

export function promqlRefs(rawExpr: string): PromqlRefs {
  const expr = expandGrafanaVariables(rawExpr);
  const tree = parser.parse(expr);
  const refs: PromqlRefs = { errors: [], selectors: [], grouping: [] };
  const text = (n: SyntaxNode): string => expr.slice(n.from, n.to);
  tree.iterate({
    enter: (ref) => {
      const n = ref.node;
      if (n.type.isError) refs.errors.push(`at ${n.from}: …${expr.slice(Math.max(0, n.from - 15), n.to + 15)}…`);
      if (n.name === 'VectorSelector') {
        const id = children(n, 'Identifier')[0];
        const labels = children(n, 'LabelMatchers').flatMap((m) => {
          const names: string[] = [];
          for (let c = m.firstChild; c; c = c.nextSibling) {
            const ln = children(c, 'LabelName')[0] ?? children(c, 'QuotedLabelName')[0];
            if (ln) names.push(text(ln).replace(/^"|"$/g, ''));
          }
          return names;
        });
        refs.selectors.push({ metric: id ? text(id) : '', labels });
      }
      if (n.name === 'GroupingLabels') for (const ln of children(n, 'LabelName')) refs.grouping.push(text(ln));
    },
  });
  return refs;
}

/** Series names and their label names in a Prometheus text exposition. */
export function scrapeLabels(body: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const line of body.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const brace = line.indexOf('{');
    const space = line.indexOf(' ');
    const name = brace >= 0 && brace < space ? line.slice(0, brace) : line.slice(0, space);
    const labels = out.get(name) ?? new Set<string>();
    out.set(name, labels);
    if (brace < 0 || brace > space) continue;
    // k="v",k2="v2"}: walk it once, skipping quoted values (which may hold commas, braces, escapes).
    let i = brace + 1;
    while (i < line.length && line[i] !== '}') {
      const eq = line.indexOf('=', i);
      if (eq < 0) break;
      labels.add(line.slice(i, eq));
      i = eq + 2;
      while (i < line.length && line[i] !== '"') i += line[i] === '\\' ? 2 : 1;
      i += 1;
      if (line[i] === ',') i += 1;
    }
  }
  return out;
}

/** Labels Prometheus itself attaches to every scraped series. */
export const TARGET_LABELS: ReadonlySet<string> = new Set(['job', 'instance']);

/** Every problem of one query against the series a scrape has: unknown metrics and labels, syntax errors. */
export function checkQuery(expr: string, series: ReadonlyMap<string, ReadonlySet<string>>): string[] {
  const refs = promqlRefs(expr);
  const problems = refs.errors.map((e) => `syntax error ${e}`);
  const used = new Set<string>();
  for (const s of refs.selectors) {
    const labels = series.get(s.metric);
    if (!labels) { problems.push(`metric ${s.metric || '(none)'} is not in any scrape`); continue; }
    for (const l of labels) used.add(l);
    for (const l of s.labels) if (!labels.has(l) && !TARGET_LABELS.has(l)) problems.push(`label ${l} does not exist on ${s.metric}`);
  }
  for (const g of refs.grouping) if (!used.has(g) && !TARGET_LABELS.has(g)) problems.push(`grouping label ${g} is on none of the metrics the query selects`);
  if (refs.selectors.length === 0) problems.push('the query selects no metric');
  return problems;
}
