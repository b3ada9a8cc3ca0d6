import { createHash } from 'node:crypto';

/**
 * Failure fingerprints group dead letters by cause, as ServicePulse does: the reason code plus the
 * error message with the parts that vary per message (ids, numbers, quoted values) masked.
 */
const MASKS: ReadonlyArray<[RegExp, string]> = [
  [/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi, '<uuid>'],
  [/\b\d{4}-\d{2}-\d{2}[T ][\d:.]+Z?\b/g, '<time>'],
  [/\b(?:0x)?[0-9a-f]{12,}\b/gi, '<hex>'],
  [/"[^"]*"/g, '"<str>"'],
  [/'[^']*'/g, "'<str>'"],
  [/\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b/g, '<addr>'],
  [/\b[\w.+-]+@[\w-]+\.[\w.]+\b/g, '<email>'],
  [/\d+(?:\.\d+)?/g, '<n>'],
];

export function maskMessage(message: string): string {
  let out = message;
  for (const [re, mask] of MASKS) out = out.replace(re, mask);
  return out.replace(/\s+/g, ' ').trim().slice(0, 300);
}

export interface Fingerprint {
  /** A short stable id to name the group on the command line (`--group`). */
  id: string;
  reason: string;
  pattern: string;
}

export function fingerprintOf(reason: string, errorMessage: string | undefined): Fingerprint {
  const pattern = maskMessage(errorMessage ?? '');
  const id = createHash('sha256').update(`${reason}\n${pattern}`).digest('hex').slice(0, 10);
  return { id, reason, pattern };
}
