// The embedded services' one paging step, as upstream's paginateResults (libraries/api/src/
// pagination.js): `limit` (default and maximum 1000 unless the method says otherwise) rows per
// page, one extra row fetched to know whether a `continuationToken` is needed, and the token an
// opaque string the caller passes back unchanged. `pageOf` encodes the next offset; listings
// that page by key (the index, the queue's artifacts) encode the last row's key with
// `encodeToken`, so concurrent inserts never shift a page.
import { ApiError } from './framework.js';

export interface PageQuery {
  limit?: string;
  continuationToken?: string;
}

export interface Page<Row> {
  rows: Row[];
  continuationToken?: string;
}

/** The page size a query asks for, bounded by `maxLimit`; 400 for a malformed or zero limit. */
export function pageSize(query: PageQuery, maxLimit = 1000): number {
  if (query.limit === undefined || query.limit === '') return maxLimit;
  if (!/^[0-9]+$/.test(query.limit) || Number(query.limit) < 1) {
    throw new ApiError(
      'InvalidRequestArguments',
      `query parameter limit '${query.limit}' is invalid`,
    );
  }
  return Math.min(Number(query.limit), maxLimit);
}

/** Encode a continuation token (base64url JSON). */
export function encodeToken(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

/** Decode a continuation token, or undefined when none was given; 400 for a foreign one. */
export function decodeToken<T>(
  token: string | undefined,
  type: 'string' | 'number',
): T | undefined {
  if (token === undefined || token === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    value = undefined;
  }
  if (typeof value !== type) {
    throw new ApiError('InvalidRequestArguments', `invalid continuationToken '${token}'`, {
      continuationToken: token,
    });
  }
  return value as T;
}

/** Offset paging: `fetch(limit, offset)` returns up to `limit` rows from `offset`. */
export function pageOf<Row>(
  query: PageQuery,
  fetch: (limit: number, offset: number) => Row[],
  maxLimit = 1000,
): Page<Row> {
  const size = pageSize(query, maxLimit);
  const offset = decodeToken<number>(query.continuationToken, 'number') ?? 0;
  const rows = fetch(size + 1, offset);
  if (rows.length <= size) return { rows };
  rows.length = size;
  return { rows, continuationToken: encodeToken(offset + size) };
}
