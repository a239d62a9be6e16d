/**
 * Scans the text an MCP server writes for the model (tool, prompt and resource descriptions, server
 * instructions) for what tool poisoning uses: hidden characters, encoded blobs, links, references to
 * secrets or to other tools, and phrases that give the model orders. Pure, and linear in the text:
 * one pass over the code points plus substring searches for a fixed list of phrases, no regular
 * expressions, so a server cannot stall authz with a crafted description. Input beyond
 * MAX_SCAN_CHARS is not read, and that is itself a finding.
 */

export type { Finding, FindingKind } from '../contract/policy.js';
import type { Finding, FindingKind } from '../contract/policy.js';

export const MAX_SCAN_CHARS = 64 * 1024;

/** Zero-width and other invisible format characters, and the Unicode tag block (U+E0000..E007F). */
function isInvisible(cp: number): boolean {
  return cp === 0x200b || cp === 0x200c || cp === 0x200d || cp === 0x2060 || cp === 0xfeff || cp === 0x00ad
    || cp === 0x180e || (cp >= 0x2061 && cp <= 0x2064) || (cp >= 0xe0000 && cp <= 0xe007f);
}

function isBidi(cp: number): boolean {
  return (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp === 0x200e || cp === 0x200f || cp === 0x061c;
}

function isBase64Char(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 43 || c === 47 || c === 61 || c === 45 || c === 95;
}

const hex = (cp: number): string => 'U+' + cp.toString(16).toUpperCase().padStart(4, '0');

/** A run of base64 characters this long, with letters and digits mixed, is an encoded blob, not a word. */
const BASE64_MIN_RUN = 40;

// Lower-case phrases, matched as substrings of the lower-cased text.
// Files and variables that hold keys: no honest tool description points the model at them.
const SECRET_FILES = ['.ssh', 'id_rsa', 'id_ed25519', '.env', 'aws_secret', 'mcp.json', '/etc/shadow', '/etc/passwd', '.npmrc', '.netrc', '.aws/credentials', 'private key'];
// Words that honest descriptions use too (a password reset tool).
const SECRET_WORDS = ['api key', 'api_key', 'apikey', 'access token', 'secret key', 'password', 'passwd', 'credential', 'bearer token', 'cookie'];
const INSTRUCTION_PHRASES = [
  'ignore previous', 'ignore all previous', 'ignore the previous', 'disregard previous', 'disregard all', 'forget your instructions',
  'you must', 'you should always', 'before using this tool', 'before answering', 'before responding', 'do not tell',
  "don't tell", 'do not mention', "don't mention", 'without telling', 'the user must not', 'not visible to the user',
  'system prompt', '<important>', '</important>', '<system>', '[system]', 'instead of the', 'always call', 'must call',
  'pass it as', 'send it to', 'include the contents', 'read the file', 'exfiltrate',
];
// References to other tools or to how the agent acts on them.
const TOOL_PHRASES = ['other tool', 'another tool', 'all tools', 'the tool named', 'when the tool', 'tool call', 'function call', 'call_tool', 'tools/call'];

function findPhrases(lower: string, phrases: readonly string[], kind: FindingKind, severity: Finding['severity'], out: Finding[]): void {
  for (const p of phrases) {
    const at = lower.indexOf(p);
    if (at >= 0) out.push({ kind, severity, detail: p, offset: at });
  }
}

/**
 * The findings in one text, at most one per kind and detail, in order of kind. `otherTools`: names
 * of the server's other tools; a description that names one is flagged (a tool has no business
 * steering how another is used). Names shorter than 4 characters are not looked for.
 */
export function scanText(text: string, otherTools: readonly string[] = []): Finding[] {
  const out: Finding[] = [];
  const t = text.length > MAX_SCAN_CHARS ? text.slice(0, MAX_SCAN_CHARS) : text;
  if (text.length > MAX_SCAN_CHARS) out.push({ kind: 'oversize', severity: 'block', detail: `${text.length} characters; only the first ${MAX_SCAN_CHARS} were scanned`, offset: MAX_SCAN_CHARS });
  let invisible: Finding | null = null;
  let bidi: Finding | null = null;
  let run = 0;
  let runStart = 0;
  let runDigits = false;
  let runLetters = false;
  let blob: Finding | null = null;
  const endRun = (end: number): void => {
    if (!blob && run >= BASE64_MIN_RUN && runDigits && runLetters) {
      blob = { kind: 'base64_blob', severity: 'block', detail: `${run} characters: ${t.slice(runStart, Math.min(end, runStart + 24))}…`, offset: runStart };
    }
    run = 0;
    runDigits = runLetters = false;
  };
  for (let i = 0; i < t.length; i++) {
    const cp = t.codePointAt(i)!;
    if (cp > 0xffff) i++;
    if (!invisible && isInvisible(cp)) invisible = { kind: 'invisible_unicode', severity: 'block', detail: hex(cp), offset: i };
    if (!bidi && isBidi(cp)) bidi = { kind: 'bidi_control', severity: 'block', detail: hex(cp), offset: i };
    if (cp < 128 && isBase64Char(cp)) {
      if (run === 0) runStart = i;
      run++;
      if (cp >= 48 && cp <= 57) runDigits = true;
      else if ((cp >= 65 && cp <= 90) || (cp >= 97 && cp <= 122)) runLetters = true;
    } else {
      endRun(i);
    }
  }
  endRun(t.length);
  if (invisible) out.push(invisible);
  if (bidi) out.push(bidi);
  if (blob) out.push(blob);
  const lower = t.toLowerCase();
  for (const scheme of ['http://', 'https://', 'ftp://', 'file://', 'data:']) {
    const at = lower.indexOf(scheme);
    if (at >= 0) {
      let end = at;
      while (end < t.length && end - at < 80 && t.charCodeAt(end) > 32) end++;
      out.push({ kind: 'url', severity: 'note', detail: t.slice(at, end), offset: at });
    }
  }
  findPhrases(lower, SECRET_FILES, 'secret_reference', 'block', out);
  findPhrases(lower, SECRET_WORDS, 'secret_reference', 'note', out);
  findPhrases(lower, TOOL_PHRASES, 'tool_reference', 'block', out);
  for (const name of otherTools) {
    if (name.length < 4) continue;
    const at = lower.indexOf(name.toLowerCase());
    if (at >= 0) out.push({ kind: 'tool_reference', severity: 'block', detail: name, offset: at });
  }
  findPhrases(lower, INSTRUCTION_PHRASES, 'instruction', 'block', out);
  return out;
}

/**
 * Every string in a JSON schema (descriptions, titles, enum values, defaults), for scanning. The
 * dialect and id URIs (`$schema`, `$id`) are left out: nearly every SDK-generated schema carries
 * `$schema`, and flagging it buried the real servers' tools under `url` notes.
 */
export function schemaTexts(schema: unknown, limit = 1000): string[] {
  const out: string[] = [];
  const stack: unknown[] = [schema];
  while (stack.length && out.length < limit) {
    const v = stack.pop();
    if (typeof v === 'string') out.push(v);
    else if (Array.isArray(v)) stack.push(...v);
    else if (typeof v === 'object' && v !== null) {
      for (const [k, x] of Object.entries(v)) {
        out.push(k);
        if (!((k === '$schema' || k === '$id') && typeof x === 'string')) stack.push(x);
      }
    }
  }
  return out;
}
