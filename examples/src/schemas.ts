import { z } from 'zod';

/**
 * The jobs' data, shared by the handlers (the worker checks each message) and the server
 * (enqueue checks before anything is sent, so bad input is a 400, not a dead letter).
 */
export const thumbnailData = z.object({
  url: z.url({ protocol: /^https?$/ }),
  width: z.number().int().min(16).max(4096),
});
export type ThumbnailData = z.infer<typeof thumbnailData>;

export const emailData = z.object({
  to: z.email(),
  subject: z.string().min(1).max(200),
  text: z.string().max(100_000).default(''),
});
export type EmailData = z.infer<typeof emailData>;
