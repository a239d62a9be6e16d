/**
 * The configuration tables in docs/ are generated from the config schemas: `make config-docs`
 * rewrites them, and test/unit/config/config-docs.test.ts fails when a doc is stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { z } from 'zod';
import { configTable, replaceGenerated } from '../../src/config/doc-table.js';
import { decisionLogConfigSchema } from '../../src/decisionlog/config.js';
import { budgetNatsSchema, budgetSchema } from '../../src/budget/config.js';
import { authzConfigSchema } from '../../src/authz/config.js';

interface GeneratedTable { file: string; name: string; schema: z.ZodType }

export const TABLES: GeneratedTable[] = [
  { file: 'docs/configuration.md', name: 'authz-config', schema: authzConfigSchema },
  { file: 'docs/decision-log.md', name: 'decision-log-config', schema: decisionLogConfigSchema },
  { file: 'docs/budgets.md', name: 'budget-fields', schema: budgetSchema },
  { file: 'docs/budgets.md', name: 'budget-nats-fields', schema: budgetNatsSchema },
];

const ROOT = join(import.meta.dirname, '..', '..');

/** Each doc file with its generated tables as the schemas say they should read. */
export function renderDocs(): Map<string, { current: string; wanted: string }> {
  const out = new Map<string, { current: string; wanted: string }>();
  for (const t of TABLES) {
    const current = out.get(t.file)?.current ?? readFileSync(join(ROOT, t.file), 'utf8');
    const base = out.get(t.file)?.wanted ?? current;
    out.set(t.file, { current, wanted: replaceGenerated(base, t.name, configTable(t.schema)) });
  }
  return out;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  for (const [file, { current, wanted }] of renderDocs()) {
    if (current === wanted) continue;
    writeFileSync(join(ROOT, file), wanted);
    console.log(`rewrote ${file}`);
  }
}
