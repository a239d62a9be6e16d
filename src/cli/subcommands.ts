import { UsageError } from './types.js';

/** Where a command writes: the process's stdout/stderr, or a test's buffers. */
export interface CommandIo {
  out(text: string): void;
  err(text: string): void;
}

export const STDIO: CommandIo = {
  out: (t) => { process.stdout.write(t); },
  err: (t) => { process.stderr.write(t); },
};

export interface SubcommandSet {
  /** `controlplane` in `tollgate controlplane serve`. */
  command: string;
  /** The command's usage text, listing its subcommands. */
  usage: string;
  names: readonly string[];
  io?: CommandIo;
}

const HELP_WORDS = new Set(['--help', '-h', 'help']);

/** The one wording of an unknown subcommand (also for commands that parse flags before the subcommand). */
export function unknownSubcommand(sub: string, names: readonly string[]): string {
  return `unknown subcommand "${sub}" (one of: ${names.join(', ')})`;
}

/**
 * `tollgate <command> <subcommand> ...` for every command with subcommands, so they all answer
 * alike: --help, -h or help prints the usage on stdout and exits 0; no subcommand or an unknown
 * one is a usage error: the problem and the usage on stderr, exit 2 (the CLI's usage-error code).
 * Names are matched exactly against `names` (never an object's inherited keys).
 */
export async function dispatch(set: SubcommandSet, argv: readonly string[], run: (sub: string, rest: string[]) => Promise<number>): Promise<number> {
  const io = set.io ?? STDIO;
  const [sub, ...rest] = argv;
  if (sub !== undefined && HELP_WORDS.has(sub)) {
    io.out(set.usage);
    return 0;
  }
  if (sub === undefined || !set.names.includes(sub)) {
    const problem = sub === undefined ? `name a subcommand (one of: ${set.names.join(', ')})` : unknownSubcommand(sub, set.names);
    io.err(`tollgate ${set.command}: ${problem}\n\n${set.usage}`);
    return 2;
  }
  return run(sub, rest);
}

/**
 * `dispatch` over a table of subcommands sharing one io, for commands whose subcommands throw
 * UsageError: that is answered alike everywhere (the problem and a pointer to the subcommand's
 * --help on stderr, exit 2). Any other error goes to `failed`, which returns the exit code or rethrows.
 */
export function dispatchTable<Io extends CommandIo>(
  set: { command: string; usage: string; io: Io },
  table: Readonly<Record<string, (argv: string[], io: Io) => Promise<number>>>,
  argv: readonly string[],
  failed: (e: unknown, sub: string) => number,
): Promise<number> {
  return dispatch({ ...set, names: Object.keys(table) }, argv, async (sub, rest) => {
    try {
      return await table[sub]!(rest, set.io);
    } catch (e) {
      if (!(e instanceof UsageError)) return failed(e, sub);
      set.io.err(`tollgate ${set.command} ${sub}: ${e.message}\nRun \`tollgate ${set.command} ${sub} --help\` for usage.\n`);
      return 2;
    }
  });
}
