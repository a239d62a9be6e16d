import { createHash } from 'node:crypto';
import { canonicalize } from '../decisionlog/canonical.js';
import { scanText, schemaTexts, type Finding } from './scan.js';
import { isObject } from '../util/object.js';

/**
 * A tool's definition as the model sees it, and its pin hash: SHA-256 over the RFC 8785 canonical
 * JSON of exactly the members that can steer a model or a call (name, title, description, input and
 * output schema, annotations). Anything else a server adds (_meta, icons) does not change the hash.
 */
export interface ToolDefinition {
  name: string;
  title: string | null;
  description: string | null;
  inputSchema: unknown;
  outputSchema: unknown;
  annotations: unknown;
}

/** The definition of a tools/list item; null when the item has no name. */
export function toolDefinition(raw: unknown): ToolDefinition | null {
  if (!isObject(raw) || typeof raw.name !== 'string' || raw.name === '') return null;
  return {
    name: raw.name,
    title: typeof raw.title === 'string' ? raw.title : null,
    description: typeof raw.description === 'string' ? raw.description : null,
    inputSchema: raw.inputSchema ?? null,
    outputSchema: raw.outputSchema ?? null,
    annotations: raw.annotations ?? null,
  };
}

export function definitionHash(def: ToolDefinition): string {
  return createHash('sha256').update(canonicalize(def)).digest('hex');
}

/** Scanner findings for a tool: its title, description and every text in its schemas. */
export function scanDefinition(def: ToolDefinition, otherTools: readonly string[] = []): Finding[] {
  const others = otherTools.filter((n) => n !== def.name);
  const texts = [def.title ?? '', def.description ?? '', ...schemaTexts(def.inputSchema), ...schemaTexts(def.outputSchema)];
  const seen = new Set<string>();
  const out: Finding[] = [];
  for (const [i, text] of texts.entries()) {
    for (const f of scanText(text, others)) {
      const key = `${f.kind}\u0000${f.detail}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(i < 2 ? f : { ...f, detail: `${f.detail} (in the schema)` });
    }
  }
  return out;
}
