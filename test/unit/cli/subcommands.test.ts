import { strict as assert } from 'node:assert';
import { dispatch, unknownSubcommand, type CommandIo } from '../../../src/cli/subcommands.js';

function buffers(): CommandIo & { stdout: string; stderr: string } {
  const b = { stdout: '', stderr: '', out: (t: string) => { b.stdout += t; }, err: (t: string) => { b.stderr += t; } };
  return b;
}

describe('subcommand dispatch (every tollgate command with subcommands)', () => {
  const set = (io: CommandIo) => ({ command: 'demo', usage: 'Usage: tollgate demo <a|b>\n', names: ['a', 'b'], io });
  const never = (): Promise<number> => assert.fail('must not run');

  it('runs the named subcommand with the rest of the arguments and returns its exit code', async () => {
    const io = buffers();
    const seen: Array<[string, string[]]> = [];
    const code = await dispatch(set(io), ['b', '--x', '1'], async (sub, rest) => { seen.push([sub, rest]); return 7; });
    assert.equal(code, 7);
    assert.deepEqual(seen, [['b', ['--x', '1']]]);
    assert.equal(io.stdout + io.stderr, '');
  });

  it('prints the usage on stdout and exits 0 for --help, -h and help', async () => {
    for (const word of ['--help', '-h', 'help']) {
      const io = buffers();
      assert.equal(await dispatch(set(io), [word], never), 0);
      assert.equal(io.stdout, 'Usage: tollgate demo <a|b>\n');
      assert.equal(io.stderr, '');
    }
  });

  it('answers a missing or unknown subcommand with exit 2, the problem and the usage on stderr', async () => {
    const none = buffers();
    assert.equal(await dispatch(set(none), [], never), 2);
    assert.equal(none.stderr, 'tollgate demo: name a subcommand (one of: a, b)\n\nUsage: tollgate demo <a|b>\n');
    // An inherited object key is not a subcommand.
    for (const sub of ['c', 'toString', 'constructor']) {
      const io = buffers();
      assert.equal(await dispatch(set(io), [sub], never), 2);
      assert.equal(io.stdout, '');
      assert.equal(io.stderr, `tollgate demo: unknown subcommand "${sub}" (one of: a, b)\n\nUsage: tollgate demo <a|b>\n`);
    }
    assert.equal(unknownSubcommand('x', ['p', 'q']), 'unknown subcommand "x" (one of: p, q)');
  });
});
