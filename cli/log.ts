import { createLogger, type Logger } from '../core/index.ts';

/**
 * The CLI's root logger: pretty on a terminal (LOG_PRETTY=0 keeps JSON there), JSON elsewhere;
 * `destination` 2 for commands whose stdout is their answer.
 */
export function cliLogger(name: string, level: string, destination: 1 | 2 = 1): Logger {
  const stream = destination === 2 ? process.stderr : process.stdout;
  return createLogger({ name, level, destination, pretty: stream.isTTY === true && process.env.LOG_PRETTY !== '0' });
}
