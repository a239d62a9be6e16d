import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

/** The parts of V8's .cpuprofile format (what `node --cpu-prof` writes) that the summary needs. */
interface CallFrame { functionName: string; url: string; lineNumber: number; columnNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; hitCount?: number; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; startTime: number; endTime: number; samples?: number[] }

export interface HotSpot {
  /** function (file:line), or a group name. */
  name: string;
  /** Share of all samples, idle excluded. */
  share: number;
  ms: number;
}

export interface ProfileSummary {
  samples: number;
  /** Wall time the profile covers, and the part of it the thread was busy. */
  wallMs: number;
  busyMs: number;
  /** Where time was spent by the function itself. */
  self: HotSpot[];
  /** Time spent in a function and everything it called (recursion counted once). */
  inclusive: HotSpot[];
  /** Self time by origin: a src/ file, an npm package, node internals, GC. */
  byOrigin: HotSpot[];
}

const IDLE = '(idle)';

function frameName(f: CallFrame, root: string): string {
  const fn = f.functionName || '(anonymous)';
  if (!f.url) return fn;
  const file = f.url.startsWith('file://') ? relative(root, decodeURIComponent(f.url.slice(7))) : f.url;
  return `${fn} (${file}:${f.lineNumber + 1})`;
}

/** src/authz/check.ts, @grpc/grpc-js, node:internal/…, (garbage collector). */
function origin(f: CallFrame, root: string): string {
  if (!f.url) return f.functionName || '(native)';
  if (f.url.startsWith('node:')) return 'node internals';
  const path = f.url.startsWith('file://') ? relative(root, decodeURIComponent(f.url.slice(7))) : f.url;
  const nm = path.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const parts = path.slice(nm + 'node_modules/'.length).split('/');
    return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  return path.replace(/^dist\//, '').replace(/^\.state\/bench-dist\//, '');
}

function top(map: Map<string, number>, total: number, perSampleMs: number, n: number): HotSpot[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, hits]) => ({ name, share: hits / total, ms: hits * perSampleMs }));
}

/** Self, inclusive and per-origin time from a .cpuprofile, idle time left out of the shares. */
export function summarizeProfile(file: string, root: string, n = 25): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((x) => [x.id, x]));
  const totalHits = p.nodes.reduce((a, x) => a + (x.hitCount ?? 0), 0);
  const wallMs = (p.endTime - p.startTime) / 1000;
  const perSampleMs = totalHits ? wallMs / totalHits : 0;
  const idleHits = p.nodes.filter((x) => x.callFrame.functionName === IDLE).reduce((a, x) => a + (x.hitCount ?? 0), 0);
  const busy = totalHits - idleHits;

  const self = new Map<string, number>();
  const byOrigin = new Map<string, number>();
  for (const x of p.nodes) {
    const hits = x.hitCount ?? 0;
    if (!hits || x.callFrame.functionName === IDLE) continue;
    const name = frameName(x.callFrame, root);
    self.set(name, (self.get(name) ?? 0) + hits);
    const o = origin(x.callFrame, root);
    byOrigin.set(o, (byOrigin.get(o) ?? 0) + hits);
  }

  // Inclusive: each node's subtree total, credited to every distinct function on its stack once.
  const inclusive = new Map<string, number>();
  const subtree = new Map<number, number>();
  const total = (id: number): number => {
    const cached = subtree.get(id);
    if (cached !== undefined) return cached;
    const node = byId.get(id)!;
    let t = node.callFrame.functionName === IDLE ? 0 : node.hitCount ?? 0;
    for (const c of node.children ?? []) t += total(c);
    subtree.set(id, t);
    return t;
  };
  const onStack = new Set<string>();
  const walk = (id: number): void => {
    const node = byId.get(id)!;
    const name = frameName(node.callFrame, root);
    const fresh = !onStack.has(name);
    if (fresh) {
      inclusive.set(name, (inclusive.get(name) ?? 0) + total(id));
      onStack.add(name);
    }
    for (const c of node.children ?? []) walk(c);
    if (fresh) onStack.delete(name);
  };
  const rootNode = p.nodes[0];
  if (rootNode) for (const c of rootNode.children ?? []) walk(c);
  // Frames that are not functions of the program say nothing as "inclusive" entries.
  for (const k of ['(root)', '(program)', '(garbage collector)']) inclusive.delete(k);

  return {
    samples: totalHits,
    wallMs,
    busyMs: busy * perSampleMs,
    self: top(self, busy, perSampleMs, n),
    inclusive: top(inclusive, busy, perSampleMs, n),
    byOrigin: top(byOrigin, busy, perSampleMs, n),
  };
}

export function renderProfile(s: ProfileSummary): string {
  const pct = (x: number): string => `${(x * 100).toFixed(1).padStart(5)}%`;
  const block = (title: string, rows: HotSpot[]): string =>
    [title, ...rows.map((r) => `  ${pct(r.share)}  ${r.ms.toFixed(0).padStart(6)} ms  ${r.name}`)].join('\n');
  return [
    `${s.samples} samples over ${(s.wallMs / 1000).toFixed(1)} s, busy ${(s.busyMs / 1000).toFixed(1)} s (shares below are of busy time)`,
    block('Self time by origin:', s.byOrigin),
    block('Self time by function:', s.self),
    block('Inclusive time by function:', s.inclusive),
  ].join('\n\n');
}
