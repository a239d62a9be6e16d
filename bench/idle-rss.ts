/**
 * Start-up to idle memory of tollgate authz, and which packages it loaded to get there:
 *
 *   node --import tsx bench/idle-rss.ts [--settle-ms 2000] [--samples 5] [--node-flags "..."] [--policies DIR] [--modules]
 *
 * Starts the dev issuer and authz exactly as `make bench` does (same flags, same policy, decision
 * log on), answers the workload's 25 calls once, waits, then reads VmRSS a few times (the median
 * is printed; V8 collecting or not moves single readings by ~10 MB). With --modules, authz runs
 * with a resolve hook that writes every ES module URL it loads, and the packages are counted: what
 * idle has loaded that it never called is a lazy-load candidate.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DevIssuer } from '../src/identity/issuer.js';
import { defaultConfig } from '../src/authz/config.js';
import { projectRoot } from '../src/util/tools.js';
import { buildWorkload } from './calldata.js';
import { startTollgate, type ServerSetup } from './servers.js';
import { verifyDecisions } from './verify.js';
import { currentRss } from './proc.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Module hooks, written next to the trace file: every ES module URL resolved and every CommonJS file required. */
const HOOKS = `import { appendFileSync } from 'node:fs';
const out = process.env.TOLLGATE_MODULE_TRACE;
export async function resolve(spec, ctx, next) { const r = await next(spec, ctx); if (out) appendFileSync(out, r.url + '\\n'); return r; }
`;
const REGISTER = `import Module, { register } from 'node:module';
import { appendFileSync } from 'node:fs';
register(new URL('./hooks.mjs', import.meta.url));
// CommonJS: every require() of a file, as the resolved path.
const load = Module._load;
const out = process.env.TOLLGATE_MODULE_TRACE;
Module._load = function (request, parent, isMain) {
  const r = load.apply(this, arguments);
  try { if (out && !Module.isBuiltin(request)) appendFileSync(out, Module._resolveFilename(request, parent, isMain) + '\\n'); } catch {}
  return r;
};
`;

/** Package name of a node_modules URL ("@scope/name" or "name"), or null for project and builtin modules. */
export function packageOf(url: string): string | null {
  const i = url.lastIndexOf('/node_modules/');
  if (i < 0) return null;
  const parts = url.slice(i + '/node_modules/'.length).split('/');
  return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
}

/** V8's side of the RSS, from the process metrics authz exports. */
async function heapBreakdown(adminUrl: string | undefined): Promise<string> {
  if (!adminUrl) return 'heap: no admin endpoint';
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const metric = (name: string): string => {
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
    return m ? (Number(m[1]) / 2 ** 20).toFixed(1) : '-';
  };
  return `heap: used ${metric('nodejs_heap_size_used_bytes')} MB of ${metric('nodejs_heap_size_total_bytes')} MB; external ${metric('nodejs_external_memory_bytes')} MB`;
}

/** Anonymous (heap, WASM memories, malloc) against file-backed (code, mapped libraries) resident memory. */
function rssBreakdown(pid: number): string {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (f: string): string => ((Number(new RegExp(`^${f}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0)) / 1024).toFixed(1);
  return `RSS: anonymous ${kb('RssAnon')} MB, file ${kb('RssFile')} MB, shared memory ${kb('RssShmem')} MB`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'settle-ms': { type: 'string' }, samples: { type: 'string' }, 'node-flags': { type: 'string' }, policies: { type: 'string' }, modules: { type: 'boolean' }, help: { type: 'boolean' },
    },
  });
  if (values.help) { process.stdout.write('usage: bench/idle-rss.ts [--settle-ms N] [--samples N] [--node-flags "..."] [--policies DIR] [--modules]\n'); return; }
  const settle = Number(values['settle-ms'] ?? 2000);
  const samples = Number(values.samples ?? 5);
  const work = mkdtempSync(join(tmpdir(), 'tollgate-idle-'));
  const nodeFlags = (values['node-flags'] ?? '').split(' ').filter(Boolean);
  const trace = join(work, 'modules.txt');
  if (values.modules) {
    writeFileSync(join(work, 'hooks.mjs'), HOOKS);
    writeFileSync(join(work, 'register.mjs'), REGISTER);
    writeFileSync(trace, '');
    nodeFlags.push('--import', join(work, 'register.mjs'));
    process.env.TOLLGATE_MODULE_TRACE = trace;
  }
  const issuer = await DevIssuer.start({ port: 0, stateDir: join(work, 'issuer') });
  try {
    const audience = defaultConfig().identity.audience[0]!;
    const setup: ServerSetup = {
      identity: { issuerUrl: issuer.url, audience, jwks: issuer.jwks(), algorithms: defaultConfig().identity.algorithms },
      server: 'demo', namespace: 'default', workDir: work, policiesDir: resolve(values.policies ?? join(projectRoot(), 'policies')), opaEnvoy: '', nodeFlags,
    };
    const calls = await buildWorkload({ issuer, audience, server: setup.server, namespace: setup.namespace, authority: '127.0.0.1:10000' });
    const t0 = Date.now();
    const s = await startTollgate(setup, { decisionLog: true });
    try {
      const startedMs = Date.now() - t0;
      const atReady = currentRss(s.proc.pid!);
      const checked = await verifyDecisions(s.target, calls);
      await sleep(settle);
      const readings: number[] = [];
      for (let i = 0; i < samples; i++) { readings.push(currentRss(s.proc.pid!) ?? 0); await sleep(200); }
      readings.sort((a, b) => a - b);
      const mb = (b: number | null): string => (b === null ? '-' : (b / 2 ** 20).toFixed(1));
      process.stdout.write(`ready in ${startedMs} ms; RSS at ready ${mb(atReady)} MB; idle (median of ${samples}, ${settle} ms after ${checked.matched} checks) ${mb(readings[Math.floor(readings.length / 2)]!)} MB [${readings.map(mb).join(' ')}]\n`);
      process.stdout.write(`${await heapBreakdown(s.adminUrl)}\n${rssBreakdown(s.proc.pid!)}\n`);
      if (checked.mismatches.length) process.stdout.write(`decision mismatches: ${checked.mismatches.length}\n`);
      if (values.modules) {
        const counts = new Map<string, number>();
        let own = 0;
        for (const url of new Set(readFileSync(trace, 'utf8').split('\n').filter(Boolean))) {
          if (url.startsWith('node:')) continue;
          const p = packageOf(url);
          if (p) counts.set(p, (counts.get(p) ?? 0) + 1); else own++;
        }
        process.stdout.write(`ES modules loaded: ${own} of the project's, and from packages:\n`);
        for (const [p, n] of [...counts].sort((a, b) => b[1] - a[1])) process.stdout.write(`  ${String(n).padStart(4)}  ${p}\n`);
      }
    } finally {
      await s.proc.stop();
    }
  } finally {
    await issuer.close();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e: Error) => { process.stderr.write(`idle-rss: ${e.message}\n`); process.exit(1); });
