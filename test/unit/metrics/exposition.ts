/**
 * A strict reader of the Prometheus text format (0.0.4), enough to check what /metrics serves:
 * every line must parse, every sample must belong to a declared metric, no series may repeat.
 */

export interface ExpoSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  types: Map<string, string>;
  helps: Map<string, string>;
  samples: ExpoSample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

function parseLabels(s: string, line: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < s.length) {
    const eq = s.indexOf('=', i);
    if (eq < 0) throw new Error(`bad labels in: ${line}`);
    const key = s.slice(i, eq);
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(key)) throw new Error(`bad label name "${key}" in: ${line}`);
    if (s[eq + 1] !== '"') throw new Error(`unquoted label value in: ${line}`);
    let j = eq + 2;
    let v = '';
    for (;;) {
      const c = s[j];
      if (c === undefined) throw new Error(`unterminated label value in: ${line}`);
      if (c === '\\') {
        const n = s[j + 1];
        v += n === 'n' ? '\n' : n ?? '';
        j += 2;
        continue;
      }
      if (c === '"') break;
      v += c;
      j++;
    }
    if (key in out) throw new Error(`label ${key} twice in: ${line}`);
    out[key] = v;
    i = j + 1;
    if (s[i] === ',') i++;
  }
  return out;
}

function parseValue(s: string, line: string): number {
  if (s === '+Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  if (s === 'NaN' || s === 'Nan') return NaN;
  const v = Number(s);
  if (s === '' || !Number.isFinite(v)) throw new Error(`bad value in: ${line}`);
  return v;
}

/** The metric a sample line belongs to: histograms expose _bucket, _sum and _count lines. */
function familyOf(name: string, types: Map<string, string>): string | null {
  if (types.has(name)) return name;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length);
      const t = types.get(base);
      if (t === 'histogram' || (t === 'summary' && suffix !== '_bucket')) return base;
    }
  }
  return null;
}

export function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const helps = new Map<string, string>();
  const samples: ExpoSample[] = [];
  const seen = new Set<string>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (line.startsWith('# HELP ')) {
      const rest = line.slice('# HELP '.length);
      const sp = rest.indexOf(' ');
      helps.set(sp < 0 ? rest : rest.slice(0, sp), sp < 0 ? '' : rest.slice(sp + 1));
      continue;
    }
    if (line.startsWith('# TYPE ')) {
      const [, , n, t] = line.split(' ');
      if (!n || !NAME.test(n) || !t || !['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(t)) throw new Error(`bad TYPE line: ${line}`);
      if (types.has(n)) throw new Error(`metric ${n} declared twice`);
      types.set(n, t);
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line);
    if (!m) throw new Error(`unparseable sample line: ${line}`);
    const name = m[1]!;
    const labels = m[2] ? parseLabels(m[2], line) : {};
    const value = parseValue(m[3]!, line);
    if (familyOf(name, types) === null) throw new Error(`sample ${name} has no TYPE line before it`);
    const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (seen.has(key)) throw new Error(`duplicate series: ${line}`);
    seen.add(key);
    samples.push({ name, labels, value });
  }
  return { types, helps, samples };
}

/** The value of the one series with exactly these labels (a subset match would hide mistakes). */
export function valueOf(expo: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = JSON.stringify(Object.entries(labels).sort());
  const hit = expo.samples.find((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === want);
  return hit?.value;
}

export function seriesOf(expo: Exposition, name: string): ExpoSample[] {
  return expo.samples.filter((s) => s.name === name);
}
