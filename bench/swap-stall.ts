import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { generateSigningKeyPair, signingKeyFromText, verificationKeysFromText } from '../src/bundle/keys.js';
import { withRevision } from '../src/bundle/manifest.js';
import { signBundle } from '../src/bundle/sign.js';
import { buildPolicyBundle } from '../src/policy/build.js';
import { readBundle, writeBundle } from '../src/bundle/archive.js';
import { loadPolicy } from '../src/policy/engine.js';
import { PolicyHolder } from '../src/policy/holder.js';
import { BundleActivator } from '../src/policy/sources/activate.js';
import type { PolicyInput } from '../src/contract/policy.js';

const USAGE = `Usage: node --import tsx bench/swap-stall.ts [flags]

How long authz's event loop is blocked while a new policy bundle is swapped in: runs the NATS
source's activation path (unpack, verify the signature, load the WASM, swap) on signed bundles built
from a policy directory, with perf_hooks.monitorEventLoopDelay() and a setImmediate ticker running,
and prints the delay per swap. Each swap is paired with a control window of the same length without
a swap, so machine noise can be told apart from blocking.

  --policies DIR   policy directory (default policies)
  --swaps N        swaps to measure (default 10)
  --vary WHAT      data: each bundle differs in data.json only, as the e2e test's edits do (the
                   WASM is byte-identical, which V8 may compile once); code: each bundle has its own
                   WASM (default code)
  --hogs N         busy-loop processes to run meanwhile, for a loaded machine (default 0)
  --data-kb N      add about N KiB of extra data (a user directory under data.bench) to every
                   bundle, for policies that carry large data documents (default 0)
`;

/** A reason string of the example policy, edited per bundle so that each compiles to its own WASM. */
const CODE_MARK = 'so it is denied.';

interface Window { maxMs: number; p99Ms: number; longestBlockMs: number; wallMs: number; firstEvalMs: number }

/** An allowed search_docs call by a payments agent, as Check would evaluate it. */
function sampleInput(): PolicyInput {
  const params = { name: 'search_docs', arguments: { query: 'refund' } };
  return {
    version: 1,
    mcp: {
      method: 'tools/call', kind: 'request', tool: 'search_docs', arguments: params.arguments, resource: null, prompt: null, params,
      id: 1, session_id: 's', protocol_version: '2025-06-18', server: 'demo', namespace: 'default', annotations: null, batch: null,
    },
    identity: { authenticated: true, sub: 'agent-0', iss: 'http://issuer', team: 'payments', groups: [], roles: [], tenant: null, agent: null, scopes: [], delegation: [], claims: {} },
    budget: { budgets: [], estimated_tokens: 0 },
    request: { id: 'r1', method: 'POST', path: '/mcp', host: 'h', scheme: 'http', headers: {}, time_ns: 1 },
    attributes: {},
    parsed_body: { jsonrpc: '2.0', id: 1, method: 'tools/call', params },
    parsed_path: ['mcp'],
    parsed_query: {},
    truncated_body: false,
  };
}

/**
 * Runs `work` with the loop-delay histogram (1 ms resolution) and a setImmediate ticker: the
 * largest gap between two ticks is the longest stretch the loop could not serve I/O.
 */
async function observe(work: () => Promise<void>, afterwards: () => number): Promise<Window> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  let last = performance.now();
  let longest = 0;
  let ticking = true;
  const tick = (): void => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
    if (ticking) setImmediate(tick);
  };
  h.enable();
  setImmediate(tick);
  const start = performance.now();
  await work();
  const wallMs = performance.now() - start;
  const firstEvalMs = afterwards();
  // Lets the histogram take the sample that covers the end of the work.
  await new Promise((r) => setTimeout(r, 5));
  ticking = false;
  h.disable();
  return { maxMs: h.max / 1e6, p99Ms: h.percentile(99) / 1e6, longestBlockMs: longest, wallMs, firstEvalMs };
}

/** About `bytes` of JSON shaped like a user directory: many keys, strings, decimals. */
function syntheticData(bytes: number): Record<string, unknown> | null {
  if (bytes <= 0) return null;
  const users: Record<string, unknown> = {};
  for (let i = 0, size = 0; size < bytes; i++) {
    const u = { team: ['payments', 'support', 'readonly'][i % 3], groups: i % 50 === 0 ? ['dba'] : [], quota: 1000 + i * 0.25, note: `user number ${i}` };
    users[`user-${i}@example.com`] = u;
    size += JSON.stringify(u).length + 24;
  }
  return { users };
}

function summary(label: string, rows: Window[], key: keyof Window): string {
  const v = rows.map((r) => r[key]).sort((a, b) => a - b);
  const at = (q: number): number => v[Math.min(v.length - 1, Math.floor(q * v.length))]!;
  return `${label} median ${at(0.5).toFixed(1)} ms, worst ${v[v.length - 1]!.toFixed(1)} ms`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      policies: { type: 'string', default: 'policies' }, swaps: { type: 'string', default: '10' },
      vary: { type: 'string', default: 'code' }, hogs: { type: 'string', default: '0' }, 'data-kb': { type: 'string', default: '0' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) { console.log(USAGE); return; }
  const swaps = Number(values.swaps);
  const hogCount = Number(values.hogs);
  if (values.vary !== 'code' && values.vary !== 'data') throw new Error('--vary must be code or data');

  const pair = await generateSigningKeyPair('RS256');
  const signing = await signingKeyFromText(pair.privatePem, 'bench key');
  const keys = await verificationKeysFromText(pair.publicPem, 'bench key');
  const work = mkdtempSync(join(tmpdir(), 'tollgate-swap-'));
  const bundles: Buffer[] = [];
  try {
    const dir = join(work, 'policies');
    cpSync(resolve(values.policies), dir, { recursive: true });
    const rego = readFileSync(join(dir, 'authz.rego'), 'utf8');
    const data = JSON.parse(readFileSync(join(dir, 'data.json'), 'utf8')) as Record<string, unknown>;
    const extra = syntheticData(Number(values['data-kb']) * 1024);
    if (extra) data.bench = extra;
    writeFileSync(join(dir, 'data.json'), JSON.stringify(data));
    if (values.vary === 'code' && !rego.includes(CODE_MARK)) throw new Error(`--vary code edits the example policy's reason "${CODE_MARK}"; use --vary data for other policies`);
    for (let i = 0; i <= swaps; i++) {
      // A changed reason string changes the compiled module; a changed data key does not.
      if (values.vary === 'code') writeFileSync(join(dir, 'authz.rego'), rego.replace(CODE_MARK, `${CODE_MARK} (edit ${i})`));
      else writeFileSync(join(dir, 'data.json'), JSON.stringify({ ...data, change_marker: i }));
      const built = await readBundle(await buildPolicyBundle(dir));
      bundles.push(await writeBundle(await signBundle(withRevision(built, String(i + 1)), signing)));
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }

  const hogs: ChildProcess[] = [];
  for (let i = 0; i < hogCount; i++) hogs.push(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
  const input = sampleInput();
  const holder = new PolicyHolder();
  const activator = new BundleActivator({ holder, load: (files, o) => loadPolicy(files, o), verify: { keys } });
  const evalNow = (): number => {
    const t = performance.now();
    const d = holder.get()!.evaluate(input);
    const ms = performance.now() - t;
    if (!d.allow) throw new Error(`the sample call was denied: ${JSON.stringify(d.reasons)}`);
    return ms;
  };
  const swapRows: Window[] = [];
  const controlRows: Window[] = [];
  try {
    const first = await activator.activate(bundles[0]!, { origin: 'bench' });
    if (!first.ok) throw new Error(first.message);
    evalNow();
    console.log(`bundle ${bundles[0]!.length} bytes gzipped; vary=${values.vary}, hogs=${hogCount}, data-kb=${values['data-kb']}, node ${process.version}`);
    console.log('swap  loop-delay max  p99   longest block  swap wall  first eval | control: max  longest block');
    for (let i = 1; i <= swaps; i++) {
      await new Promise((r) => setTimeout(r, 100));
      let outcome: Awaited<ReturnType<BundleActivator['activate']>> | null = null;
      const s = await observe(async () => { outcome = await activator.activate(bundles[i]!, { origin: 'bench' }); }, evalNow);
      const done = outcome as Awaited<ReturnType<BundleActivator['activate']>> | null;
      if (!done?.ok) throw new Error(done ? done.message : 'no outcome');
      await new Promise((r) => setTimeout(r, 100));
      const wall = s.wallMs;
      const c = await observe(() => new Promise((r) => setTimeout(r, wall)), evalNow);
      swapRows.push(s);
      controlRows.push(c);
      console.log(`${String(i).padStart(4)}  ${s.maxMs.toFixed(1).padStart(13)}  ${s.p99Ms.toFixed(1).padStart(4)}  ${s.longestBlockMs.toFixed(1).padStart(13)}  ${s.wallMs.toFixed(1).padStart(9)}  ${s.firstEvalMs.toFixed(2).padStart(10)} | ${c.maxMs.toFixed(1).padStart(12)}  ${c.longestBlockMs.toFixed(1).padStart(13)}`);
    }
  } finally {
    for (const h of hogs) h.kill();
  }
  console.log(summary('swap: loop-delay max', swapRows, 'maxMs') + '; ' + summary('p99', swapRows, 'p99Ms') + '; ' + summary('longest block', swapRows, 'longestBlockMs') + '; ' + summary('first eval', swapRows, 'firstEvalMs'));
  console.log(summary('control: loop-delay max', controlRows, 'maxMs') + '; ' + summary('longest block', controlRows, 'longestBlockMs'));
}

await main();
