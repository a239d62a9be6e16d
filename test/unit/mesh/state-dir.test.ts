import { strict as assert } from 'node:assert';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepareStateDir } from '../../../src/mesh/state-dir.js';

const modeOf = (p: string): number => statSync(p).mode & 0o777;

describe('tollgate up: the state directory is private', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'tg-state-dir-'));
    chmodSync(root, 0o755);
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('makes a new state directory 0700 and its decisions/ 0750 (and the parents it needs)', () => {
    const dir = join(root, 'a', 'b', 'state');
    const r = prepareStateDir(dir);
    assert.equal(r.created, true);
    assert.deepEqual(r.warnings, []);
    assert.equal(modeOf(dir), 0o700);
    assert.equal(modeOf(join(dir, 'decisions')), 0o750);
  });

  it('leaves an existing directory\'s mode alone, and warns when others can write in it', () => {
    const dir = join(root, 'shared');
    mkdirSync(dir);
    chmodSync(dir, 0o777);
    const r = prepareStateDir(dir);
    assert.equal(r.created, false);
    assert.equal(modeOf(dir), 0o777, 'not chmodded behind the user\'s back');
    assert.equal(r.warnings.length, 1);
    assert.match(r.warnings[0]!, /writable by every user \(mode 0777\).*chmod 700 /);
    chmodSync(dir, 0o770);
    assert.match(prepareStateDir(dir).warnings[0]!, /writable by its group \(mode 0770\)/);
  });

  it('warns when every user can read an existing one, and says nothing for 0700 or 0750', () => {
    const dir = join(root, 'open');
    mkdirSync(dir);
    chmodSync(dir, 0o755);
    assert.match(prepareStateDir(dir).warnings[0]!, /can be read by every user \(mode 0755\)/);
    chmodSync(dir, 0o750);
    assert.deepEqual(prepareStateDir(dir).warnings, []);
    chmodSync(dir, 0o700);
    assert.deepEqual(prepareStateDir(dir).warnings, []);
  });

  it('warns when the directory belongs to another user', () => {
    const dir = join(root, 'theirs');
    mkdirSync(dir, { mode: 0o700 });
    const uid = statSync(dir).uid;
    assert.match(prepareStateDir(dir, uid + 1).warnings[0]!, new RegExp(`belongs to another user \\(uid ${uid}\\)`));
  });

  it('refuses a state path that is a file', () => {
    writeFileSync(join(root, 'f'), '');
    assert.throws(() => prepareStateDir(join(root, 'f')), /is not a directory/);
  });
});
