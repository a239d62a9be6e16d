import { EVAL_USAGE, SEARCH_USAGE, toolsEval, toolsSearch } from './tools-discovery.js';
import { UsageError, type Command } from './types.js';

const USAGE = `Usage: tollgate tools <command> [flags]

Commands:
  search   rank a catalogue's tools for a task (what the gateway's find_tool does)
  eval     measure tool search on labelled queries: recall@k, nDCG@k, MRR, latency, tokens

Run \`tollgate tools <command> --help\` for its flags.

${SEARCH_USAGE}
${EVAL_USAGE}`;

const SUBCOMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  search: toolsSearch,
  eval: toolsEval,
};

export const toolsCommand: Command = {
  name: 'tools',
  summary: 'Search tool catalogues and measure tool discovery',
  async run(argv) {
    const [sub, ...rest] = argv;
    if (!sub || sub === '--help' || sub === '-h') { process.stdout.write(USAGE); return sub ? 0 : 2; }
    const f = SUBCOMMANDS[sub];
    if (!f) throw new UsageError(`unknown subcommand "${sub}" (one of: ${Object.keys(SUBCOMMANDS).join(', ')})`);
    return f(rest);
  },
};
