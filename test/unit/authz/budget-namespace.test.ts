import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigFile } from '../../../src/authz/config.js';
import { configFromArgs } from '../../../src/cli/authz.js';

/** budget_namespace / --budget-namespace: the namespace an injected authz sidecar serves. */
describe('authz config: budget_namespace and --budget-namespace', () => {
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'tollgate-budget-ns-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = (yaml: string): string => {
    const f = join(dir, `c${Math.random()}.yaml`);
    writeFileSync(f, yaml);
    return f;
  };

  it('is unset by default, read from the file, and the flag (the injector\'s) wins over the file', () => {
    assert.equal(loadConfigFile(file('budgets_file: b.yaml\n')).budgetNamespace, undefined);
    const f = file('budgets_file: b.yaml\nbudget_namespace: shop\n');
    assert.equal(loadConfigFile(f).budgetNamespace, 'shop');
    assert.equal(configFromArgs(['--config', f, '--budget-namespace', 'billing'])!.budgetNamespace, 'billing');
  });

  it('refuses a value that is not a namespace name, naming the field or flag', () => {
    assert.throws(() => loadConfigFile(file('budget_namespace: Shop\n')), /budget_namespace: "Shop" is not a Kubernetes namespace name/);
    assert.throws(() => configFromArgs(['--budget-namespace', 'w.*']), /--budget-namespace: "w\.\*" is not a Kubernetes namespace name/);
  });
});
