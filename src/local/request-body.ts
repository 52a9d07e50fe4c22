// Reading and parsing a request body for the embedded services, before any scope or schema work,
// as upstream's API library (libraries/api: middleware/parse.js, middleware/schema.js) does:
// - a body whose content type is not `application/json` is not parsed; a method that takes input
//   then answers 400 MalformedPayload "Payload must be JSON with content-type: application/json
//   got content-type: <type>", with `requestInfo.payload` `{}`;
// - a JSON body that does not parse, or parses to something other than an object or an array,
//   answers 400 MalformedPayload "Failed to parse JSON: <reason>" with the raw text as payload.
// On top of upstream, a body nested deeper than MAX_JSON_DEPTH is refused the same way before it
// is parsed, by an iterative scan: deep bodies would otherwise overflow the stack of the
// recursive steps after parsing (schema validation, structured clone, the error reply).
import type http from 'node:http';
import { ApiError } from './framework.js';

/** Arrays and objects nested deeper than this are refused (no Taskcluster body comes close). */
export const MAX_JSON_DEPTH = 256;

/** What the handlers see, and what an error reply echoes as `requestInfo.payload`. */
export interface ParsedBody {
  /** The parsed JSON; `{}` when there is no JSON body (as upstream). */
  body: unknown;
  /** What to echo in an error's `requestInfo.payload`. */
  echo: unknown;
}

export class BodyTooLarge extends Error {}

/** Read the whole body, refusing one larger than `limit` bytes without buffering it. */
export function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) {
      req.resume();
      reject(new BodyTooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (c: Buffer) => {
      if (failed) return;
      size += c.length;
      if (size > limit) {
        failed = true;
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      if (!failed) resolve(Buffer.concat(chunks));
    });
    req.on('error', (e) => {
      if (!failed) reject(e);
    });
  });
}

/** True when the media type (parameters ignored) is `application/json`, as type-is decides. */
function isJsonContentType(contentType: string | undefined): boolean {
  if (!contentType) return false;
  return contentType.split(';')[0]!.trim().toLowerCase() === 'application/json';
}

/**
 * The deepest nesting of arrays and objects in a JSON text, scanning iteratively and stopping as
 * soon as `max` is exceeded (returns max + 1 then). Brackets inside strings do not count.
 */
export function jsonNestingDepth(text: string, max = MAX_JSON_DEPTH): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > max) return deepest;
      }
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) depth--;
  }
  return deepest;
}

/**
 * Parse a request body as upstream does. `takesInput` is whether the method declares an input
 * schema (only those refuse a body that is not JSON). Throws ApiError('MalformedPayload') with
 * `details.payload` set to what the error reply should echo.
 */
export function parseRequestBody(
  buf: Buffer,
  contentType: string | undefined,
  takesInput: boolean,
): ParsedBody {
  if (!isJsonContentType(contentType)) {
    if (takesInput) {
      throw new ApiError(
        'MalformedPayload',
        'Payload must be JSON with content-type: application/json ' +
          `got content-type: ${contentType ?? null}`,
        { payload: {} },
      );
    }
    return { body: {}, echo: {} };
  }
  const text = buf.toString('utf8');
  if (text === '') return { body: {}, echo: {} };
  if (jsonNestingDepth(text) > MAX_JSON_DEPTH) {
    throw new ApiError(
      'MalformedPayload',
      `Failed to parse JSON: arrays and objects are nested more than ${MAX_JSON_DEPTH} levels deep`,
      { payload: {} },
    );
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
    if (!(body instanceof Object)) throw new Error('Must be an object or array');
  } catch (e) {
    throw new ApiError('MalformedPayload', `Failed to parse JSON: ${(e as Error).message}`, {
      payload: text,
    });
  }
  return { body, echo: body };
}
