/**
 * The description scanner (src/pins/scan.ts) on a public labelled corpus: the tool definitions of
 * MCP-GuardBench's lab servers (PyPI `mcp-guardbench`, MIT), each labelled poisoned or not by the
 * fixture's own `poisoned_tools`; next to it, the tools the real servers of the tests list
 * (everything of them should scan clean). `make scanner-corpus` fetches the data (not committed).
 *
 *   tsx bench/pins/scanner.ts bench/work/pins/guardbench-tools.json
 */
import { readFileSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { DemoMcpServer } from '../../src/demo/server.js';
import { scanDefinition, toolDefinition, type ToolDefinition } from '../../src/pins/definition.js';
import { installNpm, installPypi } from '../../src/servers/install.js';
import { VERSIONS } from '../../test/integration/servers/support.js';

interface Item { source: string; name: string; def: ToolDefinition; poisoned: boolean }

function classify(items: Item[]): void {
  const names = (src: string): string[] => items.filter((i) => i.source === src).map((i) => i.name);
  const flagged = (i: Item, blockOnly: boolean): string[] =>
    scanDefinition(i.def, names(i.source).filter((n) => n !== i.name)).filter((f) => !blockOnly || f.severity === 'block').map((f) => f.kind);
  for (const blockOnly of [true, false]) {
    let tp = 0; let fp = 0; let fn = 0; let tn = 0;
    const notes: string[] = [];
    for (const i of items) {
      const kinds = flagged(i, blockOnly);
      if (i.poisoned && kinds.length) tp++;
      else if (i.poisoned) { fn++; notes.push(`missed ${i.source}/${i.name}`); }
      else if (kinds.length) { fp++; notes.push(`false alarm ${i.source}/${i.name} (${[...new Set(kinds)].join(', ')})`); }
      else tn++;
    }
    const p = tp + fp ? (tp / (tp + fp)).toFixed(2) : 'n/a';
    const r = tp + fn ? (tp / (tp + fn)).toFixed(2) : 'n/a';
    console.log(`  ${blockOnly ? 'blocking findings' : 'any finding      '}: ${tp} true, ${fp} false alarms, ${fn} missed, ${tn} clean passed; precision ${p}, recall ${r}${notes.length ? `\n    ${notes.join('\n    ')}` : ''}`);
  }
}

/** tools/list of a real server: over stdio from Tollgate's install cache, or over HTTP. */
async function listed(source: string, command: string, args: string[]): Promise<Item[]> {
  const c = new Client({ name: 'scanner-bench', version: '0' });
  await c.connect(command.startsWith('http://') ? new StreamableHTTPClientTransport(new URL(command)) : new StdioClientTransport({ command, args, stderr: 'ignore' }));
  try {
    return (await c.listTools()).tools.map((t) => ({ source, name: t.name, def: toolDefinition(t)!, poisoned: false }));
  } finally { await c.close(); }
}

async function main(): Promise<void> {
  const file = process.argv[2];
  if (!file) { console.error('usage: scanner.ts <guardbench-tools.json>'); process.exit(2); }
  const raw = JSON.parse(readFileSync(file, 'utf8')) as Array<{ fixture: string; name: string; description: string; inputSchema: unknown; annotations: unknown; poisoned: boolean }>;
  // The lab repeats one sink tool in several fixtures: each distinct definition counts once.
  const seen = new Set<string>();
  const lab: Item[] = [];
  for (const t of raw) {
    const def = toolDefinition({ name: t.name, description: t.description, inputSchema: t.inputSchema, annotations: t.annotations });
    const key = JSON.stringify([def, t.poisoned]);
    if (!def || seen.has(key)) continue;
    seen.add(key);
    lab.push({ source: t.fixture, name: t.name, def, poisoned: t.poisoned });
  }
  console.log(`MCP-GuardBench 0.1.0 lab tools: ${lab.length} distinct definitions, ${lab.filter((i) => i.poisoned).length} poisoned`);
  classify(lab);

  const fs = await installNpm(VERSIONS.filesystem.slice(4, VERSIONS.filesystem.lastIndexOf('@')), VERSIONS.filesystem.slice(VERSIONS.filesystem.lastIndexOf('@') + 1));
  const ev = await installNpm(VERSIONS.everything.slice(4, VERSIONS.everything.lastIndexOf('@')), VERSIONS.everything.slice(VERSIONS.everything.lastIndexOf('@') + 1));
  const pyPkg = (v: string): [string, string] => { const [p, ver] = v.slice(4).split('@'); return [p!, ver!]; };
  const time = await installPypi(...pyPkg(VERSIONS.time));
  const fetch = await installPypi(...pyPkg(VERSIONS.fetch));
  const demo = await DemoMcpServer.start({ port: 0 });
  const real: Item[] = [
    ...await listed('demo', `http://127.0.0.1:${demo.port}/mcp`, []).finally(() => demo.close()),
    ...await listed('server-filesystem', fs.command, [...fs.args, '/tmp']),
    ...await listed('server-everything', ev.command, [...ev.args]),
    ...await listed('mcp-server-time', time.command, time.args),
    ...await listed('mcp-server-fetch', fetch.command, fetch.args),
  ];
  console.log(`Real servers of the tests: ${real.length} tools, all clean`);
  classify(real);
}

void main();
