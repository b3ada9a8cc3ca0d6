import { setTimeout as sleep } from 'node:timers/promises';
import { PermanentError, RetryableError } from '../core/index.ts';
import type { DemoConfig } from './config.ts';
import type { Handler } from './handler.ts';

export interface DemoProcessorOptions extends DemoConfig {
  /** Source of randomness for DEMO_FAIL_RATE (injected by tests). */
  random?: () => number;
  /** How the `crash:` hook ends the process (injected by tests). */
  crash?: () => void;
}

/** The exit code of the `crash:` hook: what a process killed by SIGKILL reports (128 + 9). */
export const DEMO_CRASH_EXIT_CODE = 137;

/**
 * The tutorial's ProcessorService: appends `-processed` to the request's data (a string) after a
 * simulated delay (DEMO_DELAY_MS), failing transiently at DEMO_FAIL_RATE.
 *
 * Test hooks, by the data's prefix, only with `hooks` (DEMO_HOOKS=1; the chaos suite sets it): a
 * public API must not let a client end its workers. Without them such data is processed as any other.
 * - `fail:`  fails (transiently) on every attempt, so the message ends dead-lettered after the
 *            topology's maxAttempts;
 * - `crash:` ends the whole process at once (exit 137, no ack, no cleanup), like an OOM kill; a
 *            message that does this again and again ends dead-lettered by the quorum queue's
 *            delivery limit. Never send it to a worker you care about.
 */
export function createDemoProcessor(options: DemoProcessorOptions): Handler<unknown, string> {
  const random = options.random ?? Math.random;
  const crash = options.crash ?? (() => process.exit(DEMO_CRASH_EXIT_CODE));
  return async (data, ctx) => {
    if (typeof data !== 'string') throw new PermanentError('data must be a string', { code: 'DEMO_BAD_DATA' });
    if (options.hooks && data.startsWith('crash:')) {
      ctx.logger.warn('demo crash hook: exiting abruptly');
      crash();
      throw new PermanentError('demo crash hook did not exit', { code: 'DEMO_CRASH' });
    }
    if (options.delayMs > 0) await sleep(options.delayMs, undefined, { signal: ctx.signal });
    if (options.hooks && data.startsWith('fail:')) throw new RetryableError('demo failure requested by the fail: prefix', { code: 'DEMO_FAIL' });
    if (options.failRate > 0 && random() < options.failRate) throw new RetryableError('demo transient failure (DEMO_FAIL_RATE)', { code: 'DEMO_TRANSIENT' });
    return `${data}-processed`;
  };
}
