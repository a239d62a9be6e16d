import type { ToolEntry } from './catalog.js';

/**
 * Text → search terms, in one linear pass: split on anything that is not a letter or digit, and
 * inside words at camelCase and letter/digit boundaries (`readFile`, `get_user2` → read, file, get,
 * user, 2); lower-case; drop stop words; strip common English suffixes so "files"/"file" and
 * "deleting"/"delete" meet. No regex touches the text.
 */

const STOP = new Set(('a an and are as at be by can do does for from has have how i if in into is it its me my of on or ' +
  'please so than that the their them then there these this to was we what when where which who will with would you your ' +
  'use used using should could get given').split(' '));

const MAX_TEXT = 64 * 1024;

function isDigit(c: number): boolean { return c >= 48 && c <= 57; }
function isUpper(c: string): boolean { return c !== c.toLowerCase() && c === c.toUpperCase(); }
function isLetter(c: string): boolean { return c.toLowerCase() !== c.toUpperCase(); }

/** Light suffix stripping (a small subset of Porter's step 1), enough for tool vocabulary. */
export function stem(w: string): string {
  if (w.length <= 3) return w;
  if (w.endsWith('ies') && w.length > 4) return w.slice(0, -3) + 'y';
  if (w.endsWith('sses')) return w.slice(0, -2);
  if (w.endsWith('ss') || w.endsWith('us') || w.endsWith('is')) return w;
  if (w.endsWith('ing') && w.length > 5) { const b = w.slice(0, -3); return b.endsWith(b.at(-1)! + b.at(-1)!) && !b.endsWith('ll') && !b.endsWith('ss') ? b.slice(0, -1) : b; }
  if (w.endsWith('ed') && w.length > 4) { const b = w.slice(0, -2); return b.endsWith('e') ? b : b.endsWith(b.at(-1)! + b.at(-1)!) ? b.slice(0, -1) : b; }
  if (w.endsWith('es') && (w.endsWith('ches') || w.endsWith('shes') || w.endsWith('xes') || w.endsWith('zes'))) return w.slice(0, -2);
  if (w.endsWith('s')) return w.slice(0, -1);
  return w;
}

// Stemming "delete"/"deleted" to the same root needs the trailing 'e' gone from both.
function normalize(w: string): string {
  const s = stem(w);
  return s.length > 4 && s.endsWith('e') ? s.slice(0, -1) : s;
}

/** Search terms: words() without stop words, stemmed. */
export function terms(text: string): string[] {
  const out: string[] = [];
  for (const w of words(text)) if (!STOP.has(w)) out.push(normalize(w));
  return out;
}

/** Lower-cased words, split at non-alphanumerics and inside identifiers; input capped at 64 KiB. */
export function words(text: string): string[] {
  const out: string[] = [];
  const t = text.length > MAX_TEXT ? text.slice(0, MAX_TEXT) : text;
  let word = '';
  const flush = (): void => {
    if (word) out.push(word.toLowerCase());
    word = '';
  };
  for (let i = 0; i < t.length; i++) {
    const ch = t[i]!;
    const code = t.charCodeAt(i);
    const letter = isLetter(ch);
    const digit = isDigit(code);
    if (!letter && !digit) { flush(); continue; }
    if (word) {
      const prev = word[word.length - 1]!;
      const prevDigit = isDigit(prev.charCodeAt(0));
      // Split fooBar, foo2, 2foo; keep runs of capitals (HTTPServer → http, server).
      const camel = letter && isUpper(ch) && !isUpper(prev) && !prevDigit;
      const acronymEnd = letter && !isUpper(ch) && isUpper(prev) && word.length > 1 && isUpper(word[word.length - 2]!);
      if (camel || prevDigit !== digit) flush();
      else if (acronymEnd) { const last = word[word.length - 1]!; word = word.slice(0, -1); flush(); word = last; }
    }
    word += ch;
  }
  flush();
  return out;
}

const MAX_SCHEMA_NODES = 200;

/** Parameter names and descriptions of an input schema, breadth-first and bounded. */
export function schemaText(schema: Record<string, unknown>): string[] {
  const out: string[] = [];
  const queue: unknown[] = [schema];
  let seen = 0;
  while (queue.length && seen < MAX_SCHEMA_NODES) {
    const node = queue.shift();
    seen++;
    if (!node || typeof node !== 'object' || Array.isArray(node)) continue;
    const n = node as Record<string, unknown>;
    if (typeof n.description === 'string') out.push(n.description);
    const props = n.properties;
    if (props && typeof props === 'object' && !Array.isArray(props)) {
      for (const [k, v] of Object.entries(props as Record<string, unknown>)) { out.push(k); queue.push(v); }
    }
    if (n.items) queue.push(n.items);
  }
  return out;
}

/** The fields a tool is searched by, each already split into terms. */
export interface ToolText {
  name: string[];
  description: string[];
  params: string[];
}

export function toolText(t: ToolEntry): ToolText {
  const title = typeof t.annotations?.title === 'string' ? t.annotations.title : '';
  return {
    name: terms(`${t.name} ${title}`),
    description: terms(t.description),
    params: terms(schemaText(t.inputSchema).join(' ')),
  };
}

/** What an embedding model reads for a tool: its name in words, then its description. */
export function embeddingText(t: ToolEntry): string {
  const spaced = words(t.name).join(' ');
  const params = schemaText(t.inputSchema).slice(0, 12).join(', ');
  return `${spaced}: ${t.description}${params ? ` (parameters: ${params})` : ''}`;
}
