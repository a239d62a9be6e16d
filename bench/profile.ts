import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultConfig } from '../src/authz/config.js';
import { DevIssuer } from '../src/identity/issuer.js';
import { projectRoot } from '../src/util/tools.js';
import { buildWorkload, writeGhzData } from './calldata.js';
import { runGhz } from './ghz.js';
import { renderProfile, summarizeProfile } from './cpuprofile.js';
import { peakRss } from './proc.js';
import { startTollgate, type ServerSetup } from './servers.js';
import { verifyDecisions } from './verify.js';

const USAGE = `Usage: node --import tsx bench/profile.ts [flags]

Runs tollgate authz under node --cpu-prof on the server core, drives it with the benchmark's
CheckRequests, and prints where its CPU time goes (self and inclusive time by function, self time
by origin). Writes bench/results/profile-latest.json and .txt (profile-nolog-latest.* with
--no-decision-log); --keep FILE also keeps the raw
.cpuprofile (open it in Chrome DevTools or speedscope).

  --duration SEC   load duration (default 15)
  --rps N          fixed rate instead of saturation
  --no-decision-log  profile without the decision log
  --policies DIR   default policies
  --keep FILE      copy the .cpuprofile there
  --top N          rows per table (default 25)
`;

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: 'string' }, rps: { type: 'string' }, 'no-decision-log': { type: 'boolean' }, policies: { type: 'string' },
      keep: { type: 'string' }, top: { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) { process.stdout.write(USAGE); return 0; }
  const root = projectRoot();
  const ghz = process.env.TOLLGATE_GHZ ?? join(root, '.tools', 'bin', 'ghz');
  if (!existsSync(ghz)) throw new Error(`ghz not found at ${ghz}: run make bench once (it installs ghz), or set TOLLGATE_GHZ`);
  const workDir = join(root, 'bench', 'work', `profile-${process.pid}`);
  const profDir = join(workDir, 'cpuprofile');
  mkdirSync(profDir, { recursive: true });
  const issuer = await DevIssuer.start({ port: 0, stateDir: join(workDir, 'issuer') });
  try {
    const audience = defaultConfig().identity.audience[0]!;
    const setup: ServerSetup = {
      identity: { issuerUrl: issuer.url, audience, jwks: issuer.jwks(), algorithms: defaultConfig().identity.algorithms },
      server: 'demo', namespace: 'default', workDir, policiesDir: resolve(values.policies ?? join(root, 'policies')),
      opaEnvoy: '', nodeFlags: ['--cpu-prof', '--cpu-prof-dir', profDir],
    };
    const calls = await buildWorkload({ issuer, audience, server: 'demo', namespace: 'default', authority: '127.0.0.1:10000' });
    const dataFile = join(workDir, 'calldata.json');
    writeGhzData(dataFile, calls);
    const tg = await startTollgate(setup, { decisionLog: values['no-decision-log'] !== true });
    const durationSec = Number(values.duration ?? 15);
    const rps = values.rps ? Number(values.rps) : undefined;
    let load;
    try {
      const decisions = await verifyDecisions(tg.target, calls);
      if (decisions.mismatches.length) process.stderr.write(`[profile] decisions differ from the policy's: ${decisions.mismatches.join('; ')}\n`);
      process.stderr.write(`[profile] ${tg.title}: ${rps ? `${rps} req/s` : 'saturation'} for ${durationSec}s under --cpu-prof\n`);
      load = await runGhz({ ghz, target: tg.target, dataFile, outFile: join(workDir, 'ghz.json'), durationSec, rps, concurrency: 64, connections: 4 });
    } finally {
      const rss = tg.proc.pid ? peakRss(tg.proc.pid) : null;
      if (rss) process.stderr.write(`[profile] peak RSS ${(rss / 1e6).toFixed(0)} MB\n`);
      // The profile is written at exit; give a big one time to serialise.
      await tg.proc.stop(30_000);
    }
    const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error(`no .cpuprofile was written in ${profDir} (did authz exit cleanly on SIGTERM?)`);
    const summary = summarizeProfile(join(profDir, file), root, Number(values.top ?? 25));
    const text = `load: ${load.rps.toFixed(0)} req/s, p50 ${load.latencyMs.p50.toFixed(2)} ms, p99 ${load.latencyMs.p99.toFixed(2)} ms, ${load.errors} errors\n${renderProfile(summary)}\n`;
    process.stdout.write(text);
    const outDir = join(root, 'bench', 'results');
    mkdirSync(outDir, { recursive: true });
    const name = values['no-decision-log'] ? 'profile-nolog-latest' : 'profile-latest';
    writeFileSync(join(outDir, `${name}.json`), JSON.stringify({ at: new Date().toISOString(), decisionLog: !values['no-decision-log'], load, summary }, null, 2) + '\n');
    writeFileSync(join(outDir, `${name}.txt`), text);
    if (values.keep) copyFileSync(join(profDir, file), resolve(values.keep));
    return 0;
  } finally {
    await issuer.close();
    rmSync(workDir, { recursive: true, force: true });
  }
}

main(process.argv.slice(2)).then((code) => process.exit(code), (e: Error) => {
  process.stderr.write(`profile: ${e.message}\n`);
  process.exit(1);
});
