import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { DeadLetter } from './dead-letter.ts';

/**
 * The two phases of an HTTP purge. The export hands the caller each message with a digest and a
 * token that lists exactly those (id, digest) pairs, signed; the purge takes the token back and
 * removes only the messages it lists, and only while they are unchanged. So nothing is removed
 * that the caller did not receive first, whatever happens to the connection in between, and a
 * message dead-lettered after the export (or again, under the same id) stays. The token is
 * signed with a key derived from the admin token, so API replicas accept each other's exports.
 */
export type ExportEntries = ReadonlyArray<readonly [id: string, digest: string]>;

/** The id a dead letter is selected and purged by: its requestId, else its messageId. */
export function idOf(dl: DeadLetter): string | undefined {
  return dl.requestId ?? dl.messageId;
}

/** What identifies one dead-lettering of one message (a replayed and re-dead message differs). */
export function digestOf(dl: DeadLetter): string {
  return createHash('sha256')
    .update(dl.body)
    .update(`\n${idOf(dl) ?? ''}\n${dl.reason}\n${dl.deadAt ?? ''}\n${dl.replays}`)
    .digest('hex')
    .slice(0, 24);
}

export class ExportSigner {
  private readonly key: Buffer;

  constructor(secret: string) {
    this.key = createHash('sha256').update(`warren dead-letter export\n${secret}`).digest();
  }

  sign(entries: ExportEntries): string {
    const payload = Buffer.from(JSON.stringify(entries)).toString('base64url');
    return `${payload}.${this.mac(payload)}`;
  }

  /** The entries of a token this signer issued; undefined for anything else. */
  verify(token: string): ExportEntries | undefined {
    const [payload, mac, extra] = token.split('.');
    if (!payload || !mac || extra !== undefined) return undefined;
    const want = Buffer.from(this.mac(payload));
    const got = Buffer.from(mac);
    if (want.length !== got.length || !timingSafeEqual(want, got)) return undefined;
    try {
      const entries = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as unknown;
      if (!Array.isArray(entries) || !entries.every((e) => Array.isArray(e) && e.length === 2 && e.every((s) => typeof s === 'string'))) return undefined;
      return entries as ExportEntries;
    } catch {
      return undefined;
    }
  }

  private mac(payload: string): string {
    return createHmac('sha256', this.key).update(payload).digest('base64url');
  }
}
