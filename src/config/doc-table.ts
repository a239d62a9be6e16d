import type { z } from 'zod';

/**
 * What a configuration table in the docs says about one field: its default as written for a
 * reader (defaults that depend on other fields are resolved in code, not by zod) and what it means.
 */
export interface FieldDoc { [key: string]: unknown; default: string; doc: string }

type Shape = Record<string, z.ZodType>;

/** The object shape inside optional/nullable wrappers, or null for a leaf. */
function shapeOf(t: z.ZodType): Shape | null {
  let cur: unknown = t;
  for (let i = 0; i < 8 && cur; i++) {
    const def = (cur as { def?: { type?: string; innerType?: unknown; shape?: Shape } }).def;
    if (!def) return null;
    if (def.type === 'object') return def.shape ?? null;
    if (def.type !== 'optional' && def.type !== 'nullable' && def.type !== 'default') return null;
    cur = def.innerType;
  }
  return null;
}

/**
 * The markdown table (field | default | meaning) of a config schema whose fields carry FieldDoc
 * metadata (`.meta({ default, doc })`); nested objects are listed as `parent.child`. A field
 * without metadata is an error: every field of a documented config is documented.
 */
export function configTable(schema: z.ZodType, prefix = ''): string {
  const rows: string[] = ['| field | default | meaning |', '| --- | --- | --- |'];
  const walk = (shape: Shape, at: string): void => {
    for (const [name, field] of Object.entries(shape)) {
      const path = at + name;
      const m = field.meta() as Partial<FieldDoc> | undefined;
      if (!m || typeof m.default !== 'string' || typeof m.doc !== 'string') throw new Error(`config field ${path} has no { default, doc } metadata`);
      rows.push(`| \`${path}\` | ${m.default} | ${m.doc} |`);
      const inner = shapeOf(field);
      if (inner) walk(inner, `${path}.`);
    }
  };
  const top = shapeOf(schema);
  if (!top) throw new Error('configTable needs an object schema');
  walk(top, prefix);
  return rows.join('\n') + '\n';
}

/** `text` with the part between `<!-- generated:NAME -->` and `<!-- /generated:NAME -->` replaced. */
export function replaceGenerated(text: string, name: string, body: string): string {
  const open = `<!-- generated:${name} -->\n`;
  const close = `<!-- /generated:${name} -->`;
  const a = text.indexOf(open);
  const b = text.indexOf(close, a);
  if (a < 0 || b < 0) throw new Error(`no ${open.trim()} … ${close} markers`);
  return text.slice(0, a + open.length) + body + text.slice(b);
}

