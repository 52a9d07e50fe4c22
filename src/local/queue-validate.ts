// Runtime validation of the request bodies the embedded Queue and Worker Manager accept, against the project's own
// schemas in schemas/taskcluster/ (written from the upstream API documentation; the upstream
// schema files themselves are only used by the tests). Defaults in the schemas are applied to the
// validated copy, as the upstream queue does.
import { describeSchemaErrors, projectValidator } from '../util/schemas.js';
import { ApiError } from './framework.js';

export type QueueRequestSchema =
  | 'create-task-request'
  | 'claim-work-request'
  | 'task-exception-request'
  | 'post-artifact-request'
  | 'finish-artifact-request'
  | 'worker-manager/create-worker-pool-request'
  | 'worker-manager/static-config'
  | 'worker-manager/create-worker-request'
  | 'worker-manager/register-worker-request'
  | 'worker-manager/reregister-worker-request'
  | 'worker-manager/report-worker-error-request';

/**
 * Validate a request body; returns a deep copy with the schema defaults applied, or throws a 400
 * `InputValidationError` naming every problem (as upstream's API library does).
 */
export function validateRequest<T>(name: QueueRequestSchema, body: unknown): T {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new ApiError('InputValidationError', `the request body must be a JSON object (${name})`);
  }
  const copy = structuredClone(body) as T;
  const fn = projectValidator(`taskcluster/${name}.json`);
  if (!fn(copy)) {
    const problems = describeSchemaErrors(fn.errors, copy);
    throw new ApiError(
      'InputValidationError',
      `request body does not match ${name}.json:\n  ${problems.join('\n  ')}`,
      { schema: name, errors: problems },
    );
  }
  return copy;
}
