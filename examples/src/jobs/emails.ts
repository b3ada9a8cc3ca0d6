import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { defineJob, PermanentError, RetryableError } from 'warren';
import { emailData } from '../schemas.js';

/**
 * Sends an email (simulated: a real one would hand it to an SMTP relay or a provider's API).
 * Recipients choose the outcome, so the failure paths can be tried from curl:
 * - a mailbox at bounce.example is a hard bounce: PermanentError, dead at once ("permanent");
 * - a mail server at greylist.example refuses the first attempt ("try again later"):
 *   RetryableError, retried through emails.retry.1, sent on attempt 2.
 */
export default defineJob({
  queue: 'emails',
  schema: emailData,
  handler: async ({ to, subject }, { attempt, signal, logger }) => {
    const domain = to.slice(to.lastIndexOf('@') + 1).toLowerCase();
    if (domain === 'bounce.example') throw new PermanentError('550 mailbox does not exist');
    if (domain === 'greylist.example' && attempt === 1) throw new RetryableError('451 greylisted, try again later');
    await sleep(2, undefined, { signal }); // the SMTP exchange
    logger.info({ subjectLength: subject.length }, 'email sent');
    return { messageId: `<${randomUUID()}@example.app>`, attempt };
  },
});
