import type { Logger } from '../core/index.ts';

/** How long a closing step waits for the broker: a node cut off silently never answers. */
export const CLOSE_STEP_MS = 3000;

/**
 * Waits for a broker round trip of a shutdown step (cancel, the ack barrier, channel.close) at
 * most `ms`: against a node that is cut off without a TCP reset the reply never comes, and a
 * shutdown must end all the same. Never throws; a step that fails or times out is logged.
 */
export async function bounded(step: Promise<unknown>, what: string, logger: Logger, ms = CLOSE_STEP_MS): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), ms);
  });
  try {
    const outcome = await Promise.race([step.then(() => 'done' as const), late]);
    if (outcome === 'late') logger.warn({ timeoutMs: ms }, `${what}: no answer from the broker in time; going on`);
  } catch (err) {
    logger.debug({ err }, `${what} failed`);
  } finally {
    clearTimeout(timer);
  }
}
