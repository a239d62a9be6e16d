import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigFile } from '../../../src/authz/config.js';

describe('authz config: identity.profile', () => {
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'tollgate-idcfg-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const load = (yaml: string) => {
    const f = join(dir, `c${Math.random()}.yaml`);
    writeFileSync(f, yaml);
    return loadConfigFile(f);
  };

  it('reads a known profile', () => {
    assert.equal(load('identity:\n  issuer: https://login.microsoftonline.com/t/v2.0\n  profile: entra\n').identity.profile, 'entra');
  });

  it('leaves the profile unset by default (generic)', () => {
    assert.equal(load('identity:\n  issuer: https://idp.example\n').identity.profile, undefined);
  });

  it('refuses an unknown profile, naming the field and the choices', () => {
    assert.throws(() => load('identity:\n  profile: auth0\n'), /identity: identity\.profile: .*okta.*entra/s);
  });
});
