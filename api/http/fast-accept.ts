import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError } from '../errors.ts';

/** Content types taken as they come; any other form (another charset, more parameters) goes to express. */
const JSON_TYPES = new Set(['application/json', 'application/json; charset=utf-8', 'application/json;charset=utf-8']);
/** body-parser's strict mode: a JSON body must be an object or an array. */
const OBJECT_OR_ARRAY = /^[ \t\n\r]*[{[]/;

export interface FastAcceptOptions<J> {
  /** The job a POST to this URL (path and query, as it came) is for; undefined: not taken. */
  jobAt: (url: string) => J | undefined;
  limitBytes: number;
  /** Answers a parsed body, as the express route does. */
  accept: (job: J, body: unknown, req: IncomingMessage, res: ServerResponse) => Promise<void>;
  /** Answers an error, as the express error handler does. */
  fail: (err: unknown, req: IncomingMessage, res: ServerResponse) => void;
}

/**
 * POST of work (to a URL `jobAt` names a job for) in its common form, answered without express: a JSON body (no charset but UTF-8)
 * of a declared length within the limit, with no content encoding. Express's router, its request
 * and response helpers and body-parser were about half of what the API allocated per request
 * under load (bench/README.md); this path reads the body, parses it as body-parser's strict mode
 * would, and hands it to the same code as the route, errors to the same answers. Anything else
 * (another method, path, type or encoding, a chunked or empty body, one over the limit) returns
 * false untouched, and express answers it as before.
 */
export function fastAccept<J>(o: FastAcceptOptions<J>): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    if (req.method !== 'POST') return false;
    const job = o.jobAt(req.url ?? '');
    if (job === undefined) return false;
    const h = req.headers;
    const type = h['content-type'];
    if (type === undefined || !JSON_TYPES.has(type.toLowerCase())) return false;
    if (h['content-encoding'] !== undefined || h['transfer-encoding'] !== undefined) return false;
    const length = Number(h['content-length']);
    // NaN (absent), 0 (empty: 400 from express), over the limit (413 from express).
    if (!(length > 0 && length <= o.limitBytes)) return false;
    const chunks: Buffer[] = [];
    let received = 0;
    req.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
    });
    req.once('end', () => {
      let body: unknown;
      try {
        // Node's parser ends the body at its declared length; a shorter one ends in 'aborted', not here.
        let text = (chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, received)).toString('utf8');
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
        if (!OBJECT_OR_ARRAY.test(text)) throw new SyntaxError('not an object or array');
        body = JSON.parse(text);
      } catch {
        o.fail(new HttpError(400, 'MALFORMED_JSON', 'the body is not valid JSON (an object is expected)'), req, res);
        return;
      }
      o.accept(job, body, req, res).catch((err: unknown) => o.fail(err, req, res));
    });
    // A client gone mid-body: nothing was accepted, and no one is left to answer.
    req.once('error', () => res.destroy());
    return true;
  };
}
