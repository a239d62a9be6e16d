import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BudgetConfigError, loadBudgetConfig, parseBudgetConfig, parseBudgetList, withServedNamespace } from '../../../src/budget/config.js';

const FILE = 'budgets.yaml';

function fails(yaml: string, field: string, problem: RegExp): void {
  assert.throws(() => parseBudgetConfig(yaml, FILE), (e: unknown) => {
    assert.ok(e instanceof BudgetConfigError, String(e));
    assert.equal(e.file, FILE);
    assert.equal(e.field, field);
    assert.match(e.message, new RegExp(`^${FILE}: ${field.replace(/[[\].]/g, '\\$&')}: `));
    assert.match(e.message, problem);
    return true;
  });
}

describe('budget config', () => {
  it('reads the documented example, with defaults filled in', () => {
    const c = parseBudgetConfig(`
budgets:
  - name: payments-daily
    scope: { team: payments }
    limit: 200000
    window: day
    timezone: Europe/Berlin
    action: deny
    tokenizer: o200k_base
  - name: bot-hourly
    scope: { agent: ci-bot, server: github }
    limit: 5000
    window: hour
  - name: everyone-monthly
    limit: 10000000
    window: month
    action: warn
    tokenizer: cl100k_base
`, FILE);
    assert.equal(c.nats, null);
    assert.deepEqual(c.budgets[0], { name: 'payments-daily', scope: { team: 'payments' }, limit: 200000, window: 'day', timezone: 'Europe/Berlin', action: 'deny', tokenizer: 'o200k_base' });
    assert.deepEqual(c.budgets[1], { name: 'bot-hourly', scope: { agent: 'ci-bot', server: 'github' }, limit: 5000, window: 'hour', timezone: 'UTC', action: 'deny', tokenizer: 'o200k_base' });
    assert.deepEqual(c.budgets[2]!.scope, {});
    assert.equal(c.budgets[2]!.tokenizer, 'cl100k_base');
  });

  it('reads the nats section with durations and lease sizing', () => {
    const c = parseBudgetConfig(`
budgets: []
nats:
  url: nats://10.0.0.5:4222
  onNatsUnavailable: use-leases-until-expiry
  lease: { fraction: 0.02, min: 500, max: 20000, ttl: 45s }
  syncInterval: 500ms
`, FILE);
    assert.equal(c.nats?.url, 'nats://10.0.0.5:4222');
    assert.equal(c.nats?.onNatsUnavailable, 'use-leases-until-expiry');
    assert.deepEqual(c.nats?.lease, { fraction: 0.02, min: 500, max: 20000, ttlMs: 45000 });
    assert.equal(c.nats?.syncIntervalMs, 500);
    assert.equal(c.nats?.bucket, 'tollgate_budgets');
    assert.equal(parseBudgetConfig('budgets: []\nnats: { url: "nats://x:4222" }', FILE).nats?.onNatsUnavailable, 'fail-closed');
  });

  it('names the file and the field in every error', () => {
    fails('budgets:\n  - { name: a, limit: 10, window: week }', 'budgets[0].window', /one of hour, day, month, got "week"/);
    fails('budgets:\n  - { name: a, limit: -5, window: day }', 'budgets[0].limit', /whole number ≥ 1/);
    fails('budgets:\n  - { name: a, window: day }', 'budgets[0].limit', /required/);
    fails('budgets:\n  - { name: a, limit: 1, window: day, timezone: Mars/Olympus }', 'budgets[0].timezone', /not an IANA time zone/);
    fails('budgets:\n  - { name: a, limit: 1, window: day, action: block }', 'budgets[0].action', /deny, warn/);
    fails('budgets:\n  - { name: a, limit: 1, window: day, tokenizer: llama }', 'budgets[0].tokenizer', /o200k_base/);
    fails('budgets:\n  - { name: a, limit: 1, window: day, scope: { group: x } }', 'budgets[0].scope.group', /unknown field.*team, agent, sub, server, tool/);
    fails('budgets:\n  - { name: "a b", limit: 1, window: day }', 'budgets[0].name', /letters, digits/);
    fails('budgets:\n  - { name: a, limit: 1, window: day }\n  - { name: a, limit: 2, window: hour }', 'budgets[1].name', /already used by budgets\[0\]/);
    fails('budgets:\n  - { name: a, limit: 1, window: day, limt: 3 }', 'budgets[0].limt', /unknown field/);
    fails('budgets: {}', 'budgets', /must be a list/);
    fails('budgets: []\nnats: { url: "nats://x:4222", onNatsUnavailable: ignore }', 'nats.onNatsUnavailable', /fail-closed, use-leases-until-expiry/);
    fails('budgets: []\nnats: { url: "nats://x:4222", lease: { ttl: soon } }', 'nats.lease.ttl', /duration/);
    fails('budgets: []\nnats: { url: "nats://x:4222", lease: { min: 10, max: 5 } }', 'nats.lease', /min \(10\) is larger than max \(5\)/);
    fails('budgets: []\nnats: { url: "nats://x:4222", syncInterval: 20s }', 'nats.syncInterval', /third of nats.lease.ttl/);
  });

  it('checks every section with one schema: wrong types name the field and what was given', () => {
    fails('budgets:\n  - 42', 'budgets[0]', /must be a mapping with name, scope, limit, window, got 42/);
    fails('budgets:\n  - { name: a, limit: "ten", window: day }', 'budgets[0].limit', /whole number ≥ 1, got "ten"/);
    fails('budgets:\n  - { limit: 1, window: day }', 'budgets[0].name', /is required/);
    fails('budgets: []\nnats: { url: "nats://x:4222", lease: { fraction: 2 } }', 'nats.lease.fraction', /in \(0, 1\], got 2/);
    fails('budgets: []\nnats: { url: "nats://x:4222", lease: { tll: 5s } }', 'nats.lease.tll', /: unknown field \(known: fraction, min, max, ttl\)$/);
    fails('budgets: []\nnats: { definitions: yes }', 'nats.definitions', /true or false, got "yes"/);
    fails('bugdets: []', 'bugdets', /: unknown field \(known: budgets, nats\)$/);
    // nats.url is optional, as the code always had it (authz uses its one --nats connection); docs said required.
    assert.equal(parseBudgetConfig('budgets: []\nnats: { bucket: b }', FILE).nats?.url, '');
    assert.throws(() => parseBudgetList([{ name: 'x', limit: 1, window: 'year' }], 'kv specs'), /kv specs: budgets\[0\]\.window: must be one of hour, day, month, got "year"/);
  });

  it('reports unreadable files and bad YAML with the path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-cfg-'));
    try {
      const p = join(dir, 'b.yaml');
      assert.throws(() => loadBudgetConfig(p), (e: Error) => e.message.startsWith(`${p}: cannot read the budgets file`));
      writeFileSync(p, 'budgets: [\n');
      assert.throws(() => loadBudgetConfig(p), (e: Error) => e.message.startsWith(`${p}: not valid YAML`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('scope region names the region and uses its own usage bucket; global shares one (docs/multi-region.md)', () => {
    const global = parseBudgetConfig('budgets: []\nnats: { url: "nats://x:4222" }', FILE).nats!;
    assert.equal(global.scope, 'global');
    assert.equal(global.region, null);
    assert.equal(global.bucket, 'tollgate_budgets');
    const west = parseBudgetConfig('budgets: []\nnats: { scope: region, region: us-west }', FILE).nats!;
    assert.equal(west.scope, 'region');
    assert.equal(west.region, 'us-west');
    assert.equal(west.bucket, 'tollgate_budgets_us-west');
    assert.equal(west.configBucket, 'tollgate_budget_config', 'limits and declarations stay global');
    assert.equal(parseBudgetConfig('budgets: []\nnats: { scope: region, region: eu, bucket: usage }', FILE).nats!.bucket, 'usage_eu');
    fails('budgets: []\nnats: { scope: region }', 'nats.region', /required with nats.scope: region/);
    fails('budgets: []\nnats: { region: eu }', 'nats.region', /only read with nats.scope: region/);
    fails('budgets: []\nnats: { scope: planet }', 'nats.scope', /one of global, region, got "planet"/);
    fails('budgets: []\nnats: { scope: region, region: "eu.west" }', 'nats.region', /"eu\.west" must be 1-32 letters, digits or "-"/);
  });
});

describe('budget config of an authz serving one namespace (--budget-namespace)', () => {
  const nats = 'nats:\n  url: nats://127.0.0.1:4222\n  definitions: true\n';

  it('sets nats.namespace when the file names none, and keeps it when the file names the same', () => {
    const c = withServedNamespace(parseBudgetConfig(nats, FILE), 'shop', '--budget-namespace');
    assert.equal(c.nats!.namespace, 'shop');
    assert.equal(c.nats!.url, 'nats://127.0.0.1:4222', 'the rest of the file is kept');
    assert.equal(withServedNamespace(parseBudgetConfig(`${nats}  namespace: shop\n`, FILE), 'shop', '--budget-namespace').nats!.namespace, 'shop');
  });

  it('refuses a file naming another namespace, saying which and what to do', () => {
    assert.throws(() => withServedNamespace(parseBudgetConfig(`${nats}  namespace: billing\n`, FILE), 'shop', '--budget-namespace'),
      /^BudgetConfigError: budgets\.yaml: nats\.namespace: is "billing", but this authz serves namespace "shop" \(--budget-namespace\): .*set it to "shop"/);
  });

  it('refuses a namespace that is not a DNS label, and leaves local budgets (no usage keys) alone', () => {
    assert.throws(() => withServedNamespace(parseBudgetConfig(nats, FILE), 'a.b', '--budget-namespace'), /"a\.b" is not a Kubernetes namespace name/);
    const local = parseBudgetConfig('budgets: []\n', FILE);
    assert.equal(withServedNamespace(local, 'shop', '--budget-namespace'), local);
  });
});
