import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Just enough globbing for --scenarios: `*` and `?` within a path segment, `**` across segments,
 * `{a,b}` alternatives. Node 20 has no fs.glob, and a dependency for this is not worth it.
 */

const GLOB_CHARS = /[*?{]/;

/** A glob (with "/" separators) as an anchored regular expression. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  let inBraces = 0;
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === '*') {
      if (glob[i + 1] === '*') {
        // "**/" matches zero or more whole segments; a trailing "**" matches everything below.
        const slash = glob[i + 2] === '/';
        re += slash ? '(?:[^/]*/)*' : '.*';
        i += slash ? 2 : 1;
      } else {
        re += '[^/]*';
      }
    } else if (ch === '?') re += '[^/]';
    else if (ch === '{') { re += '(?:'; inBraces++; }
    else if (ch === '}' && inBraces > 0) { re += ')'; inBraces--; }
    else if (ch === ',' && inBraces > 0) re += '|';
    else re += ch.replace(/[.+^$()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** The leading segments without glob characters: where the walk starts. */
export function staticBase(glob: string): string {
  const segs = glob.split('/');
  const i = segs.findIndex((s) => GLOB_CHARS.test(s));
  if (i < 0) return glob;
  const base = segs.slice(0, i).join('/');
  return base === '' ? (glob.startsWith('/') ? '/' : '.') : base;
}

function* walk(dir: string): Generator<string> {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const p = dir === '.' ? e.name : join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else if (e.isFile()) yield p;
  }
}

/** Files matching the glob, sorted. A plain path names one file (or, for a directory, its YAML files). */
export function expandGlob(glob: string): string[] {
  const pattern = glob.replace(/\\/g, '/').replace(/^\.\//, '');
  if (!GLOB_CHARS.test(pattern)) {
    let st;
    try {
      st = statSync(pattern);
    } catch {
      return [];
    }
    if (st.isDirectory()) return expandGlob(`${pattern.replace(/\/+$/, '')}/**/*.{yaml,yml}`);
    return [pattern];
  }
  const re = globToRegExp(pattern);
  return [...walk(staticBase(pattern))].filter((p) => re.test(p)).sort();
}
