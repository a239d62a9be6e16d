import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON logs to stderr (stdout stays free for command output). TOLLGATE_LOG_LEVEL sets the level. */
export function createLogger(name: string): Logger {
  return pino({ name, level: process.env.TOLLGATE_LOG_LEVEL ?? 'info' }, pino.destination(2));
}
