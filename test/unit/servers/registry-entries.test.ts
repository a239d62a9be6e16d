import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registryCommand } from '../../../src/cli/registry.js';
import { UsageError } from '../../../src/cli/types.js';
import { loadPinnedKeys } from '../../../src/registry/config.js';
import { entryFileName, validateServerJson } from '../../../src/registry/server-json.js';
import { newKeyPair } from '../../../src/registry/signature.js';
import { addEntry, findEntry, verifyRegistry } from '../../../src/registry/store.js';

const entry = (name: string, version: string, description = 'x'): Record<string, unknown> => ({
  name, version, description,
  packages: [{ registryType: 'pypi', identifier: 'x', version: '1', transport: { type: 'stdio' } }],
});
const bytes = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));

describe('registry: entry names, versions and their files', () => {
  let dir: string;
  let keyPem: string;
  let pubFile: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-registry-unit-'));
    const pair = newKeyPair();
    keyPem = pair.privatePem;
    pubFile = join(dir, 'registry.pub.pem');
    writeFileSync(pubFile, pair.publicPem);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses versions with path separators, whitespace, control characters or ranges, naming the value', () => {
    for (const v of ['1/x', ' ', '', '1\u0000x', '../../x', '1 .0', '1\\x', '^1.2.3', '>=1', '1.*', 'x'.repeat(256), 7]) {
      assert.throws(() => validateServerJson(entry('a/b', v as string)), (e: Error) => /version must be one exact version/.test(e.message) && e.message.includes(JSON.stringify(v)), JSON.stringify(v));
    }
    for (const v of ['1.2.3', '2.0.0-rc.1+build.5', '1_x', '2026.10.19', '1!2.0']) assert.equal(validateServerJson(entry('a/b', v)).version, v);
  });

  it('refuses names that are not namespace/name', () => {
    for (const n of ['a', 'a/b/c', 'a_b/c', '../x', 'a/..', 'a /b', `a/${'x'.repeat(200)}`]) assert.throws(() => validateServerJson(entry(n, '1')), /name must be "namespace\/name"/, n);
    assert.equal(validateServerJson(entry('io.github.owner/my_server-2', '1')).name, 'io.github.owner/my_server-2');
  });

  it('gives every entry its own file: versions that once collided on servers/a_b@1_x.json both verify', async () => {
    assert.notEqual(entryFileName('a/b', '1_x'), entryFileName('a/b', '1+x'));
    assert.notEqual(entryFileName('a/b_c', '1'), entryFileName('a/b.c', '1'));
    const reg = join(dir, 'registry');
    const one = await addEntry(reg, bytes(entry('a/b', '1_x', 'first')), keyPem);
    const two = await addEntry(reg, bytes(entry('a/b', '1+x', 'second')), keyPem);
    assert.notEqual(one.file, two.file);
    const all = await verifyRegistry(reg, await loadPinnedKeys([pubFile]));
    assert.deepEqual(all.map((s) => [s.name, s.version, s.verified, s.entry?.description]), [['a/b', '1_x', true, 'first'], ['a/b', '1+x', true, 'second']]);
  });

  it('refuses to overwrite the file of another entry (case-insensitive file systems, older file names)', async () => {
    const reg = join(dir, 'registry');
    await addEntry(reg, bytes(entry('A/b', '1', 'first')), keyPem);
    const file = join(reg, entryFileName('A/b', '1'));
    const before = readFileSync(file);
    await assert.rejects(addEntry(reg, bytes(entry('a/b', '1', 'second')), keyPem), /would be written to servers\/A_b@1\.json, the file of entry A\/b@1; refusing/);
    assert.deepEqual(readFileSync(file), before);
    assert.ok(!existsSync(join(reg, entryFileName('a/b', '1'))) || process.platform === 'darwin' || process.platform === 'win32');
    // The same entry again replaces itself.
    await addEntry(reg, bytes(entry('A/b', '1', 'again')), keyPem);
    const [s] = await verifyRegistry(reg, await loadPinnedKeys([pubFile]));
    assert.equal(s!.verified, true);
    assert.equal(s!.entry?.description, 'again');
  });

  it('show: NAME@ is a usage error; an unknown version lists the versions there are', async () => {
    const reg = join(dir, 'registry');
    await addEntry(reg, bytes(entry('a/b_c', '1.0.0')), keyPem);
    await assert.rejects(registryCommand.run(['show', 'a/b_c@', '--registry', reg, '--trusted-key', pubFile]), (e: unknown) => e instanceof UsageError && /ends in "@" with no version/.test(e.message));
    await assert.rejects(findEntry(reg, await loadPinnedKeys([pubFile]), 'a/b_c', '2.0.0'), /registry entry a\/b_c has no version "2\.0\.0" .*\(versions: 1\.0\.0\)/);
    await assert.rejects(findEntry(reg, await loadPinnedKeys([pubFile]), 'a/x'), /no registry entry a\/x in .*\(entries: a\/b_c\)/);
  });
});
