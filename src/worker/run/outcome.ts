// How a run ends: its steps, the resolutions Treeherder shows, why a run is stopped from outside,
// and the mapping of a step's error to its resolution.
import { errorMessage, isArchiveError } from '../../util/errors.js';
import type { ArchivePayload } from '../payload.js';

export type Step =
  | 'validate'
  | 'build'
  | 'digest-check'
  | 'test'
  | 'upload'
  | 'verify'
  | 'artifacts'
  | 'index'
  | 'log'
  | 'resolve';

export type Resolution =
  | { state: 'completed' }
  | { state: 'failed'; message: string }
  | { state: 'exception'; reason: ExceptionReason; message: string }
  | { state: 'abandoned'; message: string };

export type ExceptionReason =
  | 'worker-shutdown'
  | 'malformed-payload'
  | 'resource-unavailable'
  | 'internal-error'
  | 'intermittent-task';

/** Why a run is being stopped from outside its own steps. */
export class TaskStop extends Error {
  constructor(
    readonly kind: 'claim-lost' | 'worker-shutdown' | 'max-run-time',
    message: string,
  ) {
    super(message);
    this.name = 'TaskStop';
  }
}

/** A step's decision on how the run resolves. */
export class Outcome extends Error {
  constructor(readonly resolution: Exclude<Resolution, { state: 'completed' }>) {
    super(resolution.message);
  }
}

export const failed = (message: string) => new Outcome({ state: 'failed', message });
export const exception = (reason: ExceptionReason, message: string) =>
  new Outcome({ state: 'exception', reason, message });

/** Map an error from a step to the resolution Treeherder should show. */
export function classify(e: unknown, step: Step, payload?: ArchivePayload): Outcome {
  if (e instanceof Outcome) return e;
  if (e instanceof TaskStop) {
    if (e.kind === 'claim-lost') return new Outcome({ state: 'abandoned', message: e.message });
    if (e.kind === 'worker-shutdown') return exception('worker-shutdown', e.message);
    return failed(e.message);
  }
  const msg = errorMessage(e);
  if (isArchiveError(e)) {
    switch (e.code) {
      case 'not-found': {
        const what = payload
          ? `${payload.repository} has no ${payload.subdir} at revision ${payload.revision}`
          : 'not found';
        return failed(msg.includes(payload?.revision ?? '\0') ? msg : `${what}: ${msg}`);
      }
      case 'unavailable':
      case 'corrupt':
      case 'checksum-mismatch':
        return exception('intermittent-task', msg);
      case 'not-allowed':
      case 'unsafe-path':
      case 'malformed-payload':
      case 'usage':
        return exception('malformed-payload', msg);
      case 'limit-exceeded':
        return failed(msg);
      default:
        return exception(
          step === 'upload' || step === 'verify' ? 'intermittent-task' : 'internal-error',
          msg,
        );
    }
  }
  // Unwrapped S3 SDK / network errors during storage are transient as far as we can tell.
  if (step === 'upload' || step === 'verify' || step === 'index') {
    return exception('intermittent-task', msg);
  }
  return exception('internal-error', msg);
}
