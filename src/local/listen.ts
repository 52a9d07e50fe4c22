// Listening for the embedded services' HTTP servers (the API and S3): the remembered port when
// it is free, else a free port chosen by the kernel; an explicitly requested port that is taken
// is a clear error. Listen errors are always handled (never an unhandled EADDRINUSE).
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ArchiveError, errorMessage } from '../util/errors.js';
import type { Logger } from '../util/log.js';

export interface ListenOptions {
  host: string;
  /** What the listener is, for messages: "the embedded services", "S3 (s3rver)". */
  what: string;
  /** A port the user asked for: taken means failure. */
  requested?: number;
  /** The port of the previous start: taken means another port. */
  remembered?: number;
  log?: Logger;
}

function listenOnce(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => {
      server.off('listening', onListening);
      reject(e);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

/** Listen and return the port; falls back from a taken remembered port to a free one. */
export async function listenWithFallback(
  server: http.Server,
  opts: ListenOptions,
): Promise<number> {
  const fail = (port: number, e: unknown): never => {
    const code = (e as NodeJS.ErrnoException).code;
    const hint = code === 'EADDRINUSE' ? ' (the port is taken; choose another or omit it)' : '';
    throw new ArchiveError(
      'unavailable',
      `cannot listen on ${opts.host}:${port} for ${opts.what}: ${errorMessage(e)}${hint}`,
      { host: opts.host, port, what: opts.what },
      { cause: e },
    );
  };
  if (opts.requested !== undefined) {
    try {
      return await listenOnce(server, opts.requested, opts.host);
    } catch (e) {
      return fail(opts.requested, e);
    }
  }
  if (opts.remembered) {
    try {
      return await listenOnce(server, opts.remembered, opts.host);
    } catch (e) {
      opts.log?.warn('port-unavailable-choosing-another', {
        what: opts.what,
        port: opts.remembered,
        error: errorMessage(e),
      });
    }
  }
  try {
    return await listenOnce(server, 0, opts.host);
  } catch (e) {
    return fail(0, e);
  }
}
