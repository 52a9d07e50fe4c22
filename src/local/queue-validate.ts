// Runtime validation of the request bodies the embedded Queue and Worker Manager accept, against the project's own
// schemas in schemas/taskcluster/ (written from the upstream API documentation; the upstream
// schema files themselves are only used by the tests). Defaults in the schemas are applied to the
// validated copy, as the upstream queue does.
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiError } from './framework.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

const here = path.dirname(fileURLToPath(import.meta.url));
/** schemas/taskcluster beside src/ (and beside dist/ after a build). */
export const QUEUE_SCHEMA_DIR = path.resolve(here, '../../schemas/taskcluster');

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

let ajv: Ajv | undefined;
const compiled = new Map<QueueRequestSchema, ValidateFunction>();

function validator(name: QueueRequestSchema): ValidateFunction {
  let fn = compiled.get(name);
  if (fn) return fn;
  if (!ajv) {
    ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false });
    addFormats(ajv);
  }
  const schema = JSON.parse(fs.readFileSync(path.join(QUEUE_SCHEMA_DIR, `${name}.json`), 'utf8'));
  fn = ajv.compile(schema);
  compiled.set(name, fn);
  return fn;
}

/**
 * Validate a request body; returns a deep copy with the schema defaults applied, or throws a 400
 * `InputValidationError` naming every problem (as upstream's API library does).
 */
export function validateRequest<T>(name: QueueRequestSchema, body: unknown): T {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new ApiError('InputValidationError', `the request body must be a JSON object (${name})`);
  }
  const copy = structuredClone(body) as T;
  const fn = validator(name);
  if (!fn(copy)) {
    const problems = (fn.errors ?? []).map(
      (e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'} ${JSON.stringify(e.params)}`,
    );
    throw new ApiError(
      'InputValidationError',
      `request body does not match ${name}.json:\n  ${problems.join('\n  ')}`,
      { schema: name, errors: problems },
    );
  }
  return copy;
}
