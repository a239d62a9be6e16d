import { parseArgs, type ParseArgsConfig } from 'node:util';
import { parseTimeArg, TimeArgError } from '../decisionlog/query.js';
import { UsageError } from './types.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * parseArgs with errors turned into UsageError (so they print usage, not a stack trace) and a
 * built-in --help flag.
 */
export function parseCommandArgs<O extends Options>(argv: string[], options: O, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** "90s", "15m", "1h", "2d" or plain seconds → seconds. */
export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(s.trim());
  if (!m) throw new UsageError(`bad duration "${s}": use e.g. 30s, 15m, 1h, 2d`);
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const mult = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }[unit] ?? 1;
  return n * mult;
}

/** A time flag (`--since 2h`, an ISO instant, …) as a Date, null when not given; a bad one is a usage error naming the flag. */
export function timeFlag(value: string | undefined, flag: string, now: Date): Date | null {
  if (value === undefined) return null;
  try {
    return parseTimeArg(value, now);
  } catch (e) {
    if (e instanceof TimeArgError) throw new UsageError(`--${flag}: ${e.message}`);
    throw e;
  }
}
