// Errors that carry what a release engineer needs: a stable code, whether retrying can help, and
// the specific thing that was wrong.

export type ErrorCode =
  | 'usage' // bad command-line or API input
  | 'invalid-config'
  | 'malformed-payload'
  | 'not-found' // unknown revision, subdir, artifact, index entry (permanent)
  | 'not-allowed' // repository not on the allow-list, scope refused
  | 'unsafe-path' // path escaping the tree, hostile archive entry
  | 'limit-exceeded'
  | 'checksum-mismatch'
  | 'corrupt' // truncated or malformed download / archive
  | 'unavailable' // a server down or failing after retries (intermittent)
  | 'conflict'
  | 'internal';

/** Marks ArchiveErrors, so `instanceof` holds across two loaded copies of this module. */
const ARCHIVE_ERROR = Symbol.for('mozharness-archive.ArchiveError');

export class ArchiveError extends Error {
  /**
   * A module loaded both through require (a CommonJS test loader) and through a lazy import()
   * has two ArchiveError classes; the brand makes either recognise the other's errors.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && ARCHIVE_ERROR in value;
  }

  readonly [ARCHIVE_ERROR] = true;
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;

  constructor(
    code: ErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ArchiveError';
    this.code = code;
    this.details = details;
  }
}

export function isArchiveError(e: unknown, code?: ErrorCode): e is ArchiveError {
  return e instanceof ArchiveError && (code === undefined || e.code === code);
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
