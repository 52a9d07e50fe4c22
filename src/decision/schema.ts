// Validation of the in-tree files (taskcluster/config.yml, kinds, parameters) against the
// project's own schemas in schemas/. Errors name the file, the task (when there is one) and the
// field, so a release engineer can fix the YAML without reading code.
import { ArchiveError } from '../util/errors.js';
import { projectValidator, schemaProblems, type SchemaRef } from '../util/schemas.js';

/**
 * Validate `value` against `ref` (e.g. `kind.json#/definitions/archive`); throws an
 * `invalid-config` ArchiveError listing every problem as `<file>[: task '<t>']: <field>: <why>`.
 */
export function validateAgainst(
  ref: SchemaRef,
  value: unknown,
  where: { file: string; task?: string },
): void {
  const f = projectValidator(ref);
  if (f(value)) return;
  const prefix = `${where.file}${where.task ? `: task '${where.task}'` : ''}`;
  const problems = schemaProblems(f.errors, value);
  const lines = (
    problems.length ? problems : [{ field: '(top level)', message: 'is invalid' }]
  ).map((p) => `${prefix}: ${p.field}: ${p.message}`);
  throw new ArchiveError('invalid-config', lines.join('\n'), {
    file: where.file,
    task: where.task,
    errors: lines,
  });
}
