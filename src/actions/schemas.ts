// The input schemas of the in-tree actions (schemas/action-*.json), compiled once. Errors become
// sentences that name the field, so an action task that refuses its input says exactly why.
import { describeSchemaErrors, projectValidator, schemaDocument } from '../util/schemas.js';

export type ActionSchemaName =
  | 'action-retrigger-multiple.json'
  | 'action-add-new-jobs.json'
  | 'action-retrigger.json'
  | 'action-rebuild-mozharness-archive.json';

/** The JSON schema document. */
export function actionSchema(name: ActionSchemaName): Record<string, unknown> {
  return schemaDocument(name);
}

/** The schema as published in actions.json: the same document without `$id`/`$schema`, which
 * consumers (Treeherder's ajv, the hooks service) would otherwise try to resolve. */
export function publishedSchema(name: ActionSchemaName): Record<string, unknown> {
  const { $id: _id, $schema: _schema, ...rest } = actionSchema(name);
  return structuredClone(rest);
}

/**
 * Validate (and default) an action's input. Returns the input with schema defaults applied, or
 * the list of problems. The input is deep-copied first so the caller's object is left alone.
 */
export function validateActionInput(
  name: ActionSchemaName,
  input: unknown,
): { ok: true; value: unknown } | { ok: false; errors: string[] } {
  const value: unknown = input === undefined ? undefined : JSON.parse(JSON.stringify(input));
  const fn = projectValidator(name);
  if (fn(value)) return { ok: true, value };
  return { ok: false, errors: describeSchemaErrors(fn.errors, value, { root: 'input' }) };
}
