/** A `tollgate <name>` subcommand. run() returns the exit code; it prints its own --help. */
export interface Command {
  name: string;
  /** One line for `tollgate --help`. */
  summary: string;
  run(argv: string[]): Promise<number>;
}

/** Thrown for bad command-line input: main prints the message and the command's usage, exits 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
