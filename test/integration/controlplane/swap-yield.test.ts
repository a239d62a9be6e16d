import { strict as assert } from 'node:assert';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { readBundle, writeBundle } from '../../../src/bundle/archive.js';
import { buildPolicyBundle } from '../../../src/policy/build.js';
import { loadPolicy } from '../../../src/policy/engine.js';
import { PolicyHolder } from '../../../src/policy/holder.js';
import { BundleActivator } from '../../../src/policy/sources/activate.js';
import { signBundle } from '../../../src/bundle/sign.js';
import { withRevision } from '../../../src/bundle/manifest.js';
import { keyPair } from '../../unit/bundle/fixtures.js';
import { REPO_POLICIES, toolCall, person } from '../../unit/policy/fixtures.js';

/**
 * A policy swap happens on the event loop that answers Checks (ext_authz and ext_proc both have a
 * 1 s deadline in Envoy). What can be asserted without timing: the swap path gives the loop back
 * between its steps, often enough that no step holds it for a whole bundle, and every Check on the
 * way is answered by the previous policy until the new one is in force. The loop delay is printed
 * for information only (bench/swap-stall.ts measures it properly).
 */
describe('policy swap on a serving event loop', function () {
  this.timeout(120_000);
  let work: string;
  let bundles: Buffer[];
  let fileCount: number;
  let keys: Awaited<ReturnType<typeof keyPair>>;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'tollgate-swap-'));
    const dir = join(work, 'policies');
    cpSync(REPO_POLICIES, dir, { recursive: true });
    const data = JSON.parse(readFileSync(join(dir, 'data.json'), 'utf8')) as Record<string, unknown>;
    keys = await keyPair('RS256');
    bundles = [];
    for (const rev of [1, 2]) {
      writeFileSync(join(dir, 'data.json'), JSON.stringify({ ...data, change_marker: rev }));
      const signed = await signBundle(withRevision(await readBundle(await buildPolicyBundle(dir)), String(rev)), keys.signing);
      fileCount = signed.size;
      bundles.push(await writeBundle(signed));
    }
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('yields between files and steps; Checks meanwhile get the previous revision, then the new one', async () => {
    const holder = new PolicyHolder();
    const activator = new BundleActivator({ holder, load: (files, o) => loadPolicy(files, o), verify: { keys: [keys.verification] } });
    const first = await activator.activate(bundles[0]!, { origin: 'test' });
    assert.ok(first.ok, JSON.stringify(first));

    // A Check every turn of the loop, as a busy authz would see them.
    const call = toolCall('search_docs', { query: 'refund' }, person('payments'));
    const seen: string[] = [];
    let turns = 0;
    let running = true;
    const check = (): void => {
      const p = holder.get()!;
      assert.equal(p.evaluate(call).allow, true);
      seen.push(p.revision);
      turns++;
      if (running) setImmediate(check);
    };
    const delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();
    setImmediate(check);
    const outcome = await activator.activate(bundles[1]!, { origin: 'test' });
    const turnsDuringSwap = turns;
    // One more turn, for a Check after the swap.
    await new Promise((r) => setImmediate(r));
    running = false;
    delay.disable();
    assert.ok(outcome.ok, JSON.stringify(outcome));

    // Verification alone gives the loop back once per signed file.
    assert.ok(turnsDuringSwap >= fileCount, `the loop turned ${turnsDuringSwap} times during the swap; expected at least one per bundle file (${fileCount})`);
    const firstNew = seen.indexOf('2');
    assert.ok(firstNew > 0, `Checks during the swap used the previous revision (seen: ${[...new Set(seen)].join(', ')})`);
    assert.ok(seen.slice(0, firstNew).every((r) => r === '1'));
    assert.ok(seen.slice(firstNew).every((r) => r === '2'), 'once swapped, never back');
    assert.equal(holder.get()!.revision, '2');
    console.log(`      (swap: ${turnsDuringSwap} loop turns, event-loop delay max ${(delay.max / 1e6).toFixed(1)} ms)`);
  });
});
