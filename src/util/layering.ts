/**
 * The layering rule of src/ (docs/architecture.md, "Layers"): no import cycle between top-level
 * directories, a few directions forbidden outright (the data plane never imports the control
 * plane; contract/ imports nothing), and no cycle between files either. Pure: it takes file texts
 * and returns what breaks the rule; test/unit/util/layering.test.ts feeds it the real tree, so
 * `make lint` and `make test` fail on a new cycle.
 */

/** One relative import, with both ends as paths from the tree's root ("authz/check.ts"). */
export interface ImportEdge {
  from: string;
  to: string;
}

/** A directory that must not import certain others ("*" = any directory but itself). */
export interface ForbiddenRule {
  from: string;
  to: readonly string[] | '*';
  why: string;
}

export interface LayeringReport {
  /** Each group of top-level directories that import one another, sorted, with the imports that close it. */
  cycles: { dirs: string[]; edges: ImportEdge[] }[];
  violations: { rule: ForbiddenRule; edge: ImportEdge }[];
}

const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g;

function joinPath(dir: string, rel: string): string | null {
  const out = dir === '' ? [] : dir.split('/');
  for (const part of rel.split('/')) {
    if (part === '.' || part === '') continue;
    if (part === '..') {
      if (out.length === 0) return null;
      out.pop();
    } else out.push(part);
  }
  return out.join('/');
}

/** The relative imports of one file (path from the root), resolved; `.js` specifiers name `.ts` files. */
export function importsOf(path: string, text: string): ImportEdge[] {
  const dir = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
  const edges: ImportEdge[] = [];
  for (const m of text.matchAll(SPECIFIER)) {
    const target = joinPath(dir, m[1]!);
    if (target === null) continue; // outside the tree
    edges.push({ from: path, to: target.replace(/\.js$/, '.ts') });
  }
  return edges;
}

/** Top-level directory of a path, or null for a file at the root. */
export function topDir(path: string): string | null {
  const slash = path.indexOf('/');
  return slash < 0 ? null : path.slice(0, slash);
}

/** Strongly connected components with more than one member (Tarjan), members sorted. */
export function cyclicGroups(graph: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const groups: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const group: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        group.push(w);
      } while (w !== v);
      if (group.length > 1) groups.push(group.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return groups.sort((a, b) => a[0]!.localeCompare(b[0]!));
}

/** Checks the directory-level rule over a set of files (path from the root → text). */
export function checkLayering(files: ReadonlyMap<string, string>, rules: readonly ForbiddenRule[]): LayeringReport {
  const edges = [...files].flatMap(([path, text]) => importsOf(path, text))
    .filter((e) => topDir(e.from) !== null && topDir(e.to) !== null && topDir(e.from) !== topDir(e.to));
  const graph = new Map<string, Set<string>>();
  for (const e of edges) {
    const a = topDir(e.from)!;
    const set = graph.get(a) ?? new Set<string>();
    set.add(topDir(e.to)!);
    graph.set(a, set);
  }
  const cycles = cyclicGroups(graph).map((dirs) => ({
    dirs,
    edges: edges.filter((e) => dirs.includes(topDir(e.from)!) && dirs.includes(topDir(e.to)!)),
  }));
  const violations = rules.flatMap((rule) => edges
    .filter((e) => topDir(e.from) === rule.from && (rule.to === '*' || rule.to.includes(topDir(e.to)!)))
    .map((edge) => ({ rule, edge })));
  return { cycles, violations };
}

/** File-level cycles (within and across directories), as groups of files. */
export function fileCycles(files: ReadonlyMap<string, string>): string[][] {
  const graph = new Map<string, Set<string>>();
  for (const [path, text] of files) {
    graph.set(path, new Set(importsOf(path, text).map((e) => e.to).filter((t) => files.has(t))));
  }
  return cyclicGroups(graph);
}

const CONTROL = ['controlplane', 'operator', 'cli', 'k8s'];
const DATA_PLANE = 'the data plane runs in every pod and must not depend on control-plane code';

/** Tollgate's forbidden directions (docs/architecture.md). */
export const TOLLGATE_RULES: readonly ForbiddenRule[] = [
  ...['authz', 'policy', 'decisionlog', 'budget', 'mcp', 'bundle'].map((from) => ({ from, to: CONTROL, why: DATA_PLANE })),
  { from: 'contract', to: '*', why: 'contract/ is the bottom layer: the types every layer shares, importing nothing' },
];

/** A report as lines for a failure message; empty when the rule holds. */
export function describe(report: LayeringReport): string[] {
  return [
    ...report.cycles.map((c) => `cycle between ${c.dirs.join(', ')}:\n${c.edges.map((e) => `    ${e.from} -> ${e.to}`).join('\n')}`),
    ...report.violations.map((v) => `${v.edge.from} -> ${v.edge.to}: ${v.rule.why}`),
  ];
}
