// What a route answers, and the error a route throws to answer with a status of its own.
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
  /** Fields for the request's log line. */
  log?: Record<string, unknown>;
  /** How the answer was found, for metrics and log sampling. */
  outcome?: 'hit' | 'miss' | 'negative' | 'on-demand' | 'status' | 'other';
}

/** Whether an Accept header asks for JSON: one test for routing and for the answer cache's key. */
export function acceptsJson(accept: string): boolean {
  return /\bapplication\/json\b/.test(accept);
}
