import { strict as assert } from 'node:assert';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { freePort } from '../../../src/util/net.js';
import { projectRoot } from '../../../src/util/tools.js';
import { RunningCli, runTollgate, type CliRun } from '../../support/cli.js';
import { connectClient } from '../../support/mcp-client.js';

/**
 * Issue 18, "the first hour", as a new user runs it: `tollgate up` on non-default ports with a
 * state directory of its own, then the commands its banner prints, run as printed, from another
 * directory. Every command finds the mesh through the state directory's mesh file.
 */

/** The banner's `npx tollgate …` line that starts with these words, as argv (no shell tricks in it). */
function bannerCommand(banner: string, start: string): string[] {
  const line = banner.split('\n').map((l) => l.trim()).find((l) => l.startsWith(`npx tollgate ${start}`));
  assert.ok(line, `banner has no "npx tollgate ${start}" line:\n${banner}`);
  return line.replace(/^npx tollgate /, '').split(/\s+/);
}

const lastLine = (s: string): string => s.trimEnd().split('\n').at(-1) ?? '';

function ok(r: CliRun, what: string): void {
  assert.equal(r.code, 0, `${what}: exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

describe('the first hour (issue 18)', function () {
  this.timeout(300_000);
  let root: string;
  let state: string;
  let elsewhere: string;
  let policies: string;
  let up: RunningCli;
  let client: Client | null = null;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'tollgate-first-hour-'));
    state = join(root, 'mesh-state');
    elsewhere = join(root, 'elsewhere');
    mkdirSync(elsewhere);
    policies = join(root, 'policies');
    cpSync(join(projectRoot(), 'policies'), policies, { recursive: true });
    writeFileSync(join(root, 'budgets.yaml'), 'budgets:\n  - name: payments-daily\n    scope: { team: payments }\n    limit: 500000\n    window: day\n');
    const ports: string[] = [];
    for (const f of ['--envoy-port', '--admin-port', '--authz-port', '--issuer-port', '--xds-port', '--nats-port', '--metrics-port']) ports.push(f, String(await freePort()));
    // Relative --policies and --budgets: both are taken from the directory up runs in.
    up = new RunningCli(['up', '--state', state, '--policies', 'policies', '--budgets', 'budgets.yaml', ...ports], { cwd: root });
    await up.waitFor(/Press Ctrl-C to stop/, 180_000);
  });

  after(async () => {
    await client?.close().catch(() => undefined);
    const code = await up?.stop();
    assert.equal(code, 0, `up exit code; stderr: ${up.stderr.slice(-2000)}`);
    assert.ok(!existsSync(join(state, 'mesh.json')), 'up removes its mesh file on stop');
    rmSync(root, { recursive: true, force: true });
  });

  it('the banner\'s token command, run as printed from another directory, gets a token the mesh accepts', async () => {
    const args = bannerCommand(up.stdout, 'token');
    assert.ok(args.includes('--state'), 'a custom state dir is in the printed command');
    const r = await runTollgate(args, { cwd: elsewhere });
    ok(r, 'token');
    assert.ok(!existsSync(join(elsewhere, '.state')), 'no issuer key made in the current directory');
    const mcp = /MCP endpoint \(governed\)\s+(\S+)/.exec(up.stdout)![1]!;
    assert.match(r.stdout, new RegExp(`audience ${mcp.replace(/[.]/g, '\\.')}`));
    client = await connectClient(mcp, lastLine(r.stdout));
    const res = await client.callTool({ name: 'search_docs', arguments: { query: 'refund policy' } });
    assert.ok(!res.isError, JSON.stringify(res));
  });

  it('token without a mesh or --state fails and creates nothing', async () => {
    const r = await runTollgate(['token', '--sub', 'alice'], { cwd: elsewhere, env: { ...process.env, TOLLGATE_STATE_DIR: '' } });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /no mesh and no issuer key in .*elsewhere\/\.state/);
    assert.match(r.stderr, /--state DIR or TOLLGATE_STATE_DIR=DIR/);
    assert.ok(!existsSync(join(elsewhere, '.state')));
  });

  it('status, budget status and logs query find the mesh from --state or TOLLGATE_STATE_DIR', async () => {
    const status = await runTollgate(['status', '--state', state], { cwd: elsewhere });
    ok(status, 'status');
    assert.match(status.stdout, /READY/);
    const budget = await runTollgate(['budget', 'status'], { cwd: elsewhere, env: { ...process.env, TOLLGATE_STATE_DIR: state } });
    ok(budget, 'budget status');
    assert.match(budget.stdout, /payments-daily\s+team=payments/);
    const logs = await runTollgate(bannerCommand(up.stdout, 'logs query'), { cwd: elsewhere });
    ok(logs, 'logs query');
    assert.match(logs.stdout, /search_docs/);
  });

  it('a policy edit that does not compile shows in up\'s output, in status and in a metric; fixing it shows too', async () => {
    const mesh = JSON.parse(readFileSync(join(state, 'mesh.json'), 'utf8')) as { endpoints: { controlPlaneAdmin: string } };
    writeFileSync(join(policies, 'broken.rego'), 'package tollgate.authz\n\nallow if { input.x == }\n');
    await up.waitFor(/policy edit REFUSED, not published \(revision \d+ still serves\):\n(?: {2}.*\n)*? +\S*broken\.rego:3:\d+: rego_parse_error/, 30_000);
    assert.doesNotMatch(up.stdout, /\[controlplane\]/, 'not the verbose echo');
    const status = await runTollgate(['status', '--state', state], { cwd: elsewhere });
    ok(status, 'status (authz still serves the old revision)');
    assert.match(status.stdout, /1 build refused since start/);
    assert.match(status.stdout, /LAST POLICY EDIT REFUSED [^\n]*; revision \d+ still serves:\n(?: .*\n)*? +\S*broken\.rego:3:\d+/);
    assert.match(status.stdout, /the last edit did not compile/);
    const metrics = await (await fetch(`${mesh.endpoints.controlPlaneAdmin}/metrics`)).text();
    assert.match(metrics, /^tollgate_policy_bundle_build_failures_total 1$/m);
    assert.match(metrics, /^tollgate_policy_build_failing 1$/m);
    rmSync(join(policies, 'broken.rego'));
    await up.waitFor(/policy sources build again/, 30_000).catch(async (e: Error) => {
      throw new Error(`${e.message.slice(-300)}\ncp status: ${await (await fetch(`${mesh.endpoints.controlPlaneAdmin}/status`)).text()}`);
    });
    const after = await runTollgate(['status', '--state', state], { cwd: elsewhere });
    assert.match(after.stdout, /last refused build .*\(fixed since\)/);
    assert.doesNotMatch(after.stdout, /the last edit did not compile/);
  });

  it('review questions: which destructive tools were called, annotations, columns, stats, the NATS replica', async () => {
    assert.ok(client, 'connected by the first test');
    await client.listTools();
    await client.callTool({ name: 'search_docs', arguments: { query: 'chargebacks' } });
    const denied = await client.callTool({ name: 'delete_records', arguments: { table: 'invoices', where: 'id = 7' } }).then(() => null, (e: Error) => e);
    assert.match(String(denied), /Tollgate denied this call: Tool delete_records is destructive/);
    const destructive = await runTollgate(['logs', 'query', '--state', state, '--destructive'], { cwd: elsewhere });
    ok(destructive, 'logs query --destructive');
    const rows = destructive.stdout.trimEnd().split('\n');
    assert.match(rows[0]!, /AGENT\s+GROUPS\s+SERVER\s+TOOL\s+ARGS/);
    // search_docs was called before any tools/list: authz knew no annotations, so it may have been.
    assert.equal(rows.length, 3, destructive.stdout);
    assert.match(rows[1]!, /allow\s+alice\s+payments\s+.*search_docs/);
    assert.match(rows[2]!, /deny\s+alice\s+payments\s+.*delete_records\s+\{"table":"invoices"/);
    const declared = await runTollgate(['logs', 'query', '--state', state, '--class', 'destructive'], { cwd: elsewhere });
    ok(declared, 'logs query --class destructive');
    assert.equal(declared.stdout.trimEnd().split('\n').length, 2, declared.stdout);
    assert.match(declared.stdout, /delete_records/);
    const readOnly = await runTollgate(['logs', 'query', '--state', state, '--annotation', 'readOnlyHint=true'], { cwd: elsewhere });
    ok(readOnly, 'logs query --annotation');
    assert.deepEqual(readOnly.stdout.trimEnd().split('\n').slice(1).map((l) => /search_docs\s+(\S+)/.exec(l)?.[1]), ['{"query":"chargebacks"}']);
    const stats = await runTollgate(['logs', 'stats', '--state', state], { cwd: elsewhere });
    ok(stats, 'logs stats');
    assert.match(stats.stdout, /Top denied tools[\s\S]*delete_records/);
    assert.doesNotMatch(stats.stdout.split('Denies per team')[0]!, /initialize|tools\/list/);
    // The NATS replica: the mesh's URL alone, the reviewer credential comes from mesh.json.
    const nats = /NATS JetStream\s+(\S+)/.exec(up.stdout)![1]!;
    let central: CliRun | null = null;
    for (let i = 0; i < 20; i++) {
      central = await runTollgate(['logs', 'query', '--state', state, '--nats', nats, '--tool', 'delete_records'], { cwd: elsewhere });
      if (central.code === 0 && /delete_records/.test(central.stdout)) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    ok(central!, 'logs query --nats');
    assert.match(central!.stdout, /delete_records/);
  });

  it('each revision carries its content hash; policy show --revision N prints what it contained', async () => {
    writeFileSync(join(policies, 'extra.rego'), 'package tollgate.extra\n\nmarker := "first hour"\n');
    await up.waitFor(/policy revision (\d+) published \(content [0-9a-f]{12}\)/, 30_000);
    const published = [...up.stdout.matchAll(/policy revision (\d+) published \(content ([0-9a-f]{12})\)/g)].at(-1)!;
    const [rev, hash] = [Number(published[1]), published[2]!];
    const list = await runTollgate(['policy', 'show', '--state', state], { cwd: elsewhere });
    ok(list, 'policy show');
    assert.match(list.stdout, new RegExp(`^${rev}\\s+\\S+\\s+${hash}\\s+\\d+$`, 'm'));
    const shown = await runTollgate(['policy', 'show', '--revision', String(rev), '--state', state], { cwd: elsewhere });
    ok(shown, 'policy show --revision');
    assert.match(shown.stdout, new RegExp(`^content sha256 ${hash}[0-9a-f]{52}$`, 'm'));
    assert.match(shown.stdout, /--- extra\.rego \(sha256 [0-9a-f]{64}\)\npackage tollgate\.extra\n\nmarker := "first hour"\n/);
    const before = await runTollgate(['policy', 'show', '--revision', String(rev - 1), '--state', state, '--file', 'authz.rego'], { cwd: elsewhere });
    ok(before, 'policy show --file');
    assert.equal(before.stdout, readFileSync(join(policies, 'authz.rego'), 'utf8'));
    const older = await runTollgate(['policy', 'show', '--revision', String(rev - 1), '--state', state, '--file', 'extra.rego'], { cwd: elsewhere });
    assert.equal(older.code, 1);
    assert.match(older.stderr, new RegExp(`revision ${rev - 1} has no file extra\\.rego`));
    const missing = await runTollgate(['policy', 'show', '--revision', '999', '--state', state], { cwd: elsewhere });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /revision 999 is not in .*revisions \(it has 1…\d+\)/);
  });

  it('budget status with no mesh and no budgets is an error that says what to do', async () => {
    const r = await runTollgate(['budget', 'status'], { cwd: elsewhere, env: { ...process.env, TOLLGATE_STATE_DIR: '' } });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /no running mesh found: .*elsewhere\/\.state\/mesh\.json does not exist\. Start one with `tollgate up`/);
  });
});
