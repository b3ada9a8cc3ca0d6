import type { Logger } from '../core/index.ts';

export interface ShutdownSignalOptions {
  logger: Logger;
  /** The graceful path, run on the first signal. */
  stop: (signal: NodeJS.Signals) => Promise<unknown>;
  /** The forced path, run on the second signal (a person pressing Ctrl-C again means it). */
  force: (signal: NodeJS.Signals) => void;
  signals?: readonly NodeJS.Signals[];
}

/**
 * SIGTERM/SIGINT handling for a worker or supervisor process: the first signal stops gracefully,
 * a second one forces. Returns a function that removes the handlers.
 */
export function handleShutdownSignals(options: ShutdownSignalOptions): () => void {
  const log = options.logger.child({ component: 'signals' });
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  let received = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    received += 1;
    if (received === 1) {
      log.info({ signal }, 'shutdown requested; finishing in-flight work');
      options.stop(signal).catch((err: unknown) => {
        log.error({ err }, 'graceful shutdown failed; forcing');
        options.force(signal);
      });
      return;
    }
    log.warn({ signal }, 'second signal; forcing shutdown');
    options.force(signal);
  };
  for (const s of signals) process.on(s, onSignal);
  return () => {
    for (const s of signals) process.off(s, onSignal);
  };
}
