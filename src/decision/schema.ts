// Validation of the in-tree files (taskcluster/config.yml, kinds, parameters) against the
// project's own schemas in schemas/. Errors name the file, the task (when there is one) and the
// field, so a release engineer can fix the YAML without reading code.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import fs from 'node:fs';
import { ArchiveError } from '../util/errors.js';

const schemaDir = new URL('../../schemas/', import.meta.url);

let ajv: Ajv | undefined;
const compiled = new Map<string, ValidateFunction>();

function instance(): Ajv {
  if (!ajv) {
    ajv = new Ajv({ allErrors: true, strict: false, useDefaults: false });
    for (const name of ['config.json', 'kind.json', 'parameters.json']) {
      const schema = JSON.parse(fs.readFileSync(new URL(name, schemaDir), 'utf8'));
      ajv.addSchema(schema, name);
    }
  }
  return ajv;
}

function fn(ref: string): ValidateFunction {
  let f = compiled.get(ref);
  if (!f) {
    f = instance().getSchema(ref);
    if (!f) throw new ArchiveError('internal', `no schema ${ref}`);
    compiled.set(ref, f);
  }
  return f;
}

/** `/tasks/linux64~1opt/treeherder` → `tasks.linux64/opt.treeherder` */
export function fieldPath(instancePath: string, extra?: string): string {
  const parts = instancePath
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra) parts.push(extra);
  return parts.length ? parts.join('.') : '(top level)';
}

function describe(e: ErrorObject): string {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return `${fieldPath(e.instancePath, String(p.missingProperty))}: is required`;
    case 'additionalProperties':
      return `${fieldPath(e.instancePath, String(p.additionalProperty))}: is not a known field`;
    case 'enum':
      return `${fieldPath(e.instancePath)}: must be one of ${JSON.stringify(p.allowedValues)}`;
    case 'propertyNames':
      return `${fieldPath(e.instancePath)}: has an invalid key ${JSON.stringify(p.propertyName)}`;
    default:
      return `${fieldPath(e.instancePath)}: ${e.message}`;
  }
}

/**
 * Validate `value` against `ref` (e.g. `kind.json#/definitions/archive`); throws an
 * `invalid-config` ArchiveError listing every problem as `<file>[: task '<t>']: <field>: <why>`.
 */
export function validateAgainst(
  ref: string,
  value: unknown,
  where: { file: string; task?: string },
): void {
  const f = fn(ref);
  if (f(value)) return;
  const errors = f.errors ?? [];
  const prefix = `${where.file}${where.task ? `: task '${where.task}'` : ''}`;
  const lines = [...new Set(errors.map(describe))].map((l) => `${prefix}: ${l}`);
  throw new ArchiveError('invalid-config', lines.join('\n'), {
    file: where.file,
    task: where.task,
    errors: lines,
  });
}
