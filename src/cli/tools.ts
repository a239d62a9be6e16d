import { EVAL_USAGE, SEARCH_USAGE, toolsEval, toolsSearch } from './tools-discovery.js';
import { PIN_SUBCOMMANDS, PINS_USAGE, runPins } from './tools-pins.js';
import type { Command } from './types.js';
import { dispatch } from './subcommands.js';

const USAGE = `Usage: tollgate tools <command> [flags]

Commands:
  search    rank a catalogue's tools for a task (what the gateway's find_tool does)
  eval      measure tool search on labelled queries: recall@k, nDCG@k, MRR, latency, tokens
  pending   tools servers now offer that are new or changed since their pin
  diff      what changed in one tool, pinned vs offered
  approve   sign the offered definition of a tool and pin it
  revoke    withdraw a pin

Run \`tollgate tools <command> --help\` for its flags.

${SEARCH_USAGE}
${EVAL_USAGE}
${PINS_USAGE}`;

const DISCOVERY: Record<string, (argv: string[]) => Promise<number>> = { search: toolsSearch, eval: toolsEval };

export const toolsCommand: Command = {
  name: 'tools',
  summary: 'Tool discovery (search, eval) and tool pinning (pending, diff, approve, revoke)',
  async run(argv) {
    return dispatch({ command: 'tools', usage: USAGE, names: [...Object.keys(DISCOVERY), ...PIN_SUBCOMMANDS] }, argv, (sub, rest) => {
      const pin = PIN_SUBCOMMANDS.find((p) => p === sub);
      return pin ? runPins(pin, rest) : DISCOVERY[sub]!(rest);
    });
  },
};
