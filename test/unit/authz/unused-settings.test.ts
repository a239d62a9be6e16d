import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConfig, unusedSetting } from '../../../src/authz/config.js';
import { startAuthz } from '../../../src/authz/runtime.js';
import { configFromArgs } from '../../../src/cli/authz.js';
import { UsageError } from '../../../src/cli/types.js';

/**
 * A setting no configured part reads (a verification key without signed bundles, --watch without a
 * directory, a log replica without a log) is refused, by file and by flag, never silently dropped.
 */
describe('authz config: settings nothing would read are refused', () => {
  let dir: string;
  let n = 0;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'tollgate-unused-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = (yaml: string): string => {
    const f = join(dir, `c${n++}.yaml`);
    writeFileSync(f, yaml);
    return f;
  };
  /** The UsageError configFromArgs throws for these arguments. */
  const refused = (argv: string[]): string => {
    try {
      configFromArgs(argv);
    } catch (e) {
      assert.ok(e instanceof UsageError, String(e));
      return e.message;
    }
    return assert.fail(`accepted: ${argv.join(' ')}`);
  };

  it('--verification-key without a source of signed bundles', () => {
    assert.match(refused(['--policies', 'p', '--verification-key', 'k.pem']), /^--verification-key needs a source of signed bundles to verify: --policy-from-nats or --bundle-url/);
    assert.match(refused(['--verification-key', 'k.pem']), /^--verification-key needs a source/);
  });

  it('--verification-key applies to the signed source the file names', () => {
    const fromUrl = configFromArgs(['--config', file('policy:\n  bundle_url: https://b/x.tar.gz\n'), '--verification-key', 'k.pem'])!;
    assert.equal(fromUrl.policy.bundleKey, 'k.pem');
    const fromNats = configFromArgs(['--config', file('policy:\n  from_nats: true\n  verification_key: old.pem\n'), '--verification-key', 'new.pem'])!;
    assert.equal(fromNats.policy.nats?.verificationKey, 'new.pem', 'the flag overrides the file, as every flag does');
    assert.equal(fromNats.policy.bundleKey, null);
    assert.equal(configFromArgs(['--bundle-url', 'https://b/x.tar.gz', '--verification-key', 'k.pem'])!.policy.bundleKey, 'k.pem');
  });

  it('policy.bundle_verification_key without policy.bundle_url, naming the NATS key when NATS is the source', () => {
    assert.equal(refused(['--config', file('policy:\n  dir: p\n  bundle_verification_key: k.pem\n')]),
      'policy.bundle_verification_key (--verification-key): verifies bundles from policy.bundle_url only, and none is set');
    assert.equal(refused(['--config', file('policy:\n  from_nats: true\n  verification_key: k.pem\n  bundle_verification_key: k.pem\n')]),
      'policy.bundle_verification_key (--verification-key): verifies bundles from policy.bundle_url only, and none is set (bundles from NATS are verified with policy.verification_key)');
    // The file's key with the URL from a flag is used, so it is accepted.
    assert.equal(configFromArgs(['--config', file('policy:\n  bundle_verification_key: k.pem\n'), '--bundle-url', 'https://b/x.tar.gz'])!.policy.bundleKey, 'k.pem');
  });

  it('policy.watch / --watch without a policy directory', () => {
    assert.equal(refused(['--watch', '--bundle-url', 'https://b/x.tar.gz']), 'policy.watch (--watch): rebuilds policy.dir (--policies) only, and none is set');
    assert.equal(refused(['--config', file('policy:\n  watch: true\n')]), 'policy.watch (--watch): rebuilds policy.dir (--policies) only, and none is set');
    assert.equal(configFromArgs(['--watch', '--policies', 'p'])!.policy.watch, true);
  });

  it('decision log replication or witness while the decision log is off', () => {
    assert.equal(refused(['--no-decision-log', '--replicate-decisions', '--policies', 'p']),
      'decision_log_replicate (--replicate-decisions): replicates the local decision log, but the decision log is off (decision_log_dir: null, --no-decision-log)');
    assert.match(refused(['--config', file('decision_log_dir: null\ndecision_log_nats_url: nats://n:4222\n')]), /^decision_log_replicate \(--replicate-decisions\): replicates the local decision log/);
    assert.equal(refused(['--config', file('decision_log_dir: null\ndecision_log_witness: /w.jsonl\n')]),
      'decision_log_witness (--decision-log-witness): copies the decision log\'s checkpoints, but the decision log is off (decision_log_dir: null, --no-decision-log)');
    // "No witness" with no log is consistent, not an unused setting.
    assert.equal(configFromArgs(['--no-decision-log', '--decision-log-witness', 'off', '--policies', 'p'])!.decisionLogWitness, null);
  });

  it('startAuthz refuses the same for a config built in code, before it opens anything', async () => {
    const c = defaultConfig();
    c.policy.dir = 'p';
    c.policy.bundleKey = 'k.pem';
    assert.deepEqual(unusedSetting(c)?.[0], 'policy.bundle_verification_key (--verification-key)');
    await assert.rejects(startAuthz(c), /^Error: authz config: policy\.bundle_verification_key \(--verification-key\): verifies bundles from policy\.bundle_url only/);
    c.policy.bundleKey = null;
    assert.equal(unusedSetting(c), null);
  });
});
