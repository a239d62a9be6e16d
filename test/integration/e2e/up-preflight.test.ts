import { strict as assert } from 'node:assert';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../../src/util/net.js';
import { projectRoot } from '../../../src/util/tools.js';
import { runTollgate, type CliRun } from '../../support/cli.js';

/**
 * Issue 18 "hangs instead of errors": every fatal misconfiguration of `tollgate up` ends the
 * command with exit 1 within seconds, naming the cause, the `up` flag and the fix. Before, a broken
 * policy or a missing opa left up waiting 90 s for a readiness that never came.
 */

// Node + tsx start-up on a loaded 2-core machine takes up to ~5 s of this; a hang takes 90 s.
const FAST_MS = 15_000;

const PORT_FLAGS = ['--envoy-port', '--admin-port', '--authz-port', '--issuer-port', '--xds-port', '--nats-port', '--metrics-port', '--controlplane-metrics-port'] as const;

async function portFlags(): Promise<Record<(typeof PORT_FLAGS)[number], number>> {
  const out = {} as Record<(typeof PORT_FLAGS)[number], number>;
  for (const f of PORT_FLAGS) out[f] = await freePort();
  return out;
}

const flagArgs = (p: Record<string, number>): string[] => Object.entries(p).flatMap(([k, v]) => [k, String(v)]);

function fastFailure(r: CliRun): void {
  assert.equal(r.code, 1, `exit code; stdout: ${r.stdout}\nstderr: ${r.stderr}`);
  assert.ok(r.ms < FAST_MS, `took ${r.ms} ms`);
  assert.doesNotMatch(r.stdout, /mesh is up/);
  assert.match(r.stderr, /^tollgate up: /);
  // The control plane child's own messages, not up's flag --controlplane-metrics-port.
  assert.doesNotMatch(r.stderr, /\bcontrolplane\b(?!-metrics-port)|not ready after/, 'names up, not a child process');
}

describe('tollgate up preflight (issue 18)', function () {
  this.timeout(240_000);
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'tollgate-preflight-')); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('--policies that does not exist names up\'s own flag and the fix', async () => {
    const r = await runTollgate(['up', '--state', join(dir, 's'), '--policies', '/nope', ...flagArgs(await portFlags())]);
    fastFailure(r);
    assert.match(r.stderr, /--policies \/nope does not exist/);
    assert.match(r.stderr, /fix: pass the directory that holds your \.rego files with --policies DIR/);
  });

  it('a policy that does not compile fails at once with its file:line', async () => {
    cpSync(join(projectRoot(), 'policies'), join(dir, 'pol'), { recursive: true });
    writeFileSync(join(dir, 'pol', 'broken.rego'), 'package tollgate.authz\n\nallow if { input.x == }\n');
    const r = await runTollgate(['up', '--state', join(dir, 's'), '--policies', join(dir, 'pol'), ...flagArgs(await portFlags())]);
    fastFailure(r);
    assert.match(r.stderr, /does not compile/);
    assert.match(r.stderr, /broken\.rego:3:\d+: rego_parse_error/);
  });

  it('a budgets file with a schema error names FILE:LINE and the field; relative to the current directory', async () => {
    writeFileSync(join(dir, 'budgets.yaml'), 'budgets:\n  - name: daily\n    scope: { team: payments }\n    window: day\n    limit: -5\n');
    const r = await runTollgate(['up', '--state', join(dir, 's'), '--policies', join(projectRoot(), 'policies'), '--budgets', 'budgets.yaml', ...flagArgs(await portFlags())], { cwd: dir });
    fastFailure(r);
    assert.match(r.stderr, new RegExp(`--budgets ${join(dir, 'budgets.yaml').replace(/[.]/g, '\\.')}:5: budgets\\[0\\]\\.limit: must be a whole number`));
    assert.match(r.stderr, /docs\/budgets\.md/);
  });

  it('a missing budgets file and missing opa/envoy are all listed in one run', async () => {
    const r = await runTollgate(['up', '--state', join(dir, 's'), '--policies', join(projectRoot(), 'policies'), '--budgets', join(dir, 'none.yaml'), ...flagArgs(await portFlags())], {
      env: { ...process.env, TOLLGATE_OPA: join(dir, 'no-opa'), TOLLGATE_ENVOY: join(dir, 'no-envoy') },
    });
    fastFailure(r);
    assert.match(r.stderr, /3 problems, nothing was started/);
    assert.match(r.stderr, /opa is set to .*no-opa, which does not exist\n\s+fix: point TOLLGATE_OPA at the opa binary/);
    assert.match(r.stderr, /envoy is set to .*no-envoy, which does not exist/);
    assert.match(r.stderr, /--budgets .*none\.yaml cannot be read \(ENOENT\)/);
  });

  it('each port in use is named with the up flag that moves it', async () => {
    for (const flag of PORT_FLAGS) {
      const ports = await portFlags();
      const held: Server = createServer();
      await new Promise<void>((r) => held.listen(ports[flag], '127.0.0.1', r));
      try {
        const r = await runTollgate(['up', '--state', join(dir, 's'), '--policies', join(projectRoot(), 'policies'), ...flagArgs(ports)]);
        fastFailure(r);
        assert.match(r.stderr, new RegExp(`port ${ports[flag]} \\([^)]+\\) on 127\\.0\\.0\\.1 is already in use[^\\n]*${flag} N`), flag);
      } finally {
        held.close();
      }
    }
  });
});
