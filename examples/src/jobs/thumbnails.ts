import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { defineJob, PermanentError, RetryableError } from 'warren';
import { thumbnailData } from '../schemas.js';

const IMAGE = /\.(png|jpe?g|webp|gif)$/i;

/**
 * Makes a thumbnail (simulated: a real one would fetch the image and resize it with sharp).
 * What fails, and how, is chosen by the data so the failure paths can be tried from curl:
 * - a URL that is not an image (say .pdf) can never succeed: PermanentError, dead at once
 *   with reason "permanent";
 * - an image on a host named flaky.* fails its first two attempts as an origin that answers 503
 *   would: RetryableError, retried through thumbnails.retry.1 and .2, done on attempt 3.
 */
export default defineJob({
  queue: 'thumbnails',
  schema: thumbnailData,
  timeoutMs: 20_000,
  handler: async ({ url, width }, { attempt, signal, logger }) => {
    const { hostname, pathname } = new URL(url);
    if (!IMAGE.test(pathname)) throw new PermanentError(`not an image: ${pathname.split('/').pop() ?? ''}`);
    if (hostname.startsWith('flaky.') && attempt <= 2) throw new RetryableError(`origin ${hostname} answered 503`);
    await sleep(Math.ceil(width / 64), undefined, { signal }); // the resize: a wider thumbnail takes longer
    const key = `thumbs/${createHash('sha256').update(url).digest('hex').slice(0, 16)}-${width}.webp`;
    logger.info({ width }, 'thumbnail made');
    return { key, width, attempt };
  },
});
