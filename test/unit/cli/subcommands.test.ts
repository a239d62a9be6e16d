import { strict as assert } from 'node:assert';
import { dispatch, dispatchTable, unknownSubcommand, type CommandIo } from '../../../src/cli/subcommands.js';
import { UsageError } from '../../../src/cli/types.js';

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

  it('a table of subcommands shares the io; a UsageError points to the subcommand\'s --help, other errors go to the command', async () => {
    const io = buffers();
    const table = {
      ok: async (argv: string[], o: CommandIo) => { o.out(argv.join(' ')); return 0; },
      bad: async () => { throw new UsageError('--n must be a number'); },
      broken: async () => { throw new Error('disk full'); },
    };
    const failed = (e: unknown, sub: string): number => { io.err(`[${sub}] ${(e as Error).message}`); return 1; };
    const set = { command: 'demo', usage: 'Usage: tollgate demo <ok|bad|broken>\n', io };
    assert.equal(await dispatchTable(set, table, ['ok', 'x', 'y'], failed), 0);
    assert.equal(io.stdout, 'x y');
    assert.equal(await dispatchTable(set, table, ['bad'], failed), 2);
    assert.equal(io.stderr, 'tollgate demo bad: --n must be a number\nRun `tollgate demo bad --help` for usage.\n');
    io.stderr = '';
    assert.equal(await dispatchTable(set, table, ['broken'], failed), 1);
    assert.equal(io.stderr, '[broken] disk full');
    io.stderr = '';
    assert.equal(await dispatchTable(set, table, ['toString'], failed), 2, 'names come from the table\'s own keys');
    assert.match(io.stderr, /unknown subcommand "toString" \(one of: ok, bad, broken\)/);
  });
});
