// The input schemas of the in-tree actions (schemas/action-*.json), compiled once. Errors become
// sentences that name the field, so an action task that refuses its input says exactly why.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import fs from 'node:fs';

export type ActionSchemaName =
  | 'action-retrigger-multiple.json'
  | 'action-add-new-jobs.json'
  | 'action-retrigger.json'
  | 'action-rebuild-mozharness-archive.json';

const loaded = new Map<string, Record<string, unknown>>();

/** The JSON schema document (src/actions/ and dist/actions/ are both two levels below the root). */
export function actionSchema(name: ActionSchemaName): Record<string, unknown> {
  let schema = loaded.get(name);
  if (!schema) {
    const url = new URL(`../../schemas/${name}`, import.meta.url);
    schema = JSON.parse(fs.readFileSync(url, 'utf8')) as Record<string, unknown>;
    loaded.set(name, schema);
  }
  return schema;
}

/** The schema as published in actions.json: the same document without `$id`/`$schema`, which
 * consumers (Treeherder's ajv, the hooks service) would otherwise try to resolve. */
export function publishedSchema(name: ActionSchemaName): Record<string, unknown> {
  const { $id: _id, $schema: _schema, ...rest } = actionSchema(name);
  return JSON.parse(JSON.stringify(rest));
}

let ajv: Ajv | undefined;
const compiled = new Map<string, ValidateFunction>();

function validator(name: ActionSchemaName): ValidateFunction {
  let fn = compiled.get(name);
  if (!fn) {
    ajv ??= new Ajv({ allErrors: true, useDefaults: true, strict: false });
    fn = ajv.compile(publishedSchema(name));
    compiled.set(name, fn);
  }
  return fn;
}

function field(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : `${acc}.${p}`), 'input');
}

function describe(errors: ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((e) => {
    const at = field(e.instancePath);
    const p = e.params as Record<string, unknown>;
    switch (e.keyword) {
      case 'required':
        return `${at}.${String(p.missingProperty)} is required`;
      case 'additionalProperties':
        return `${at}.${String(p.additionalProperty)} is not a known field`;
      case 'type':
        return `${at} must be ${String(p.type)}`;
      case 'minimum':
      case 'maximum':
        return `${at} must be ${e.keyword === 'minimum' ? '>=' : '<='} ${String(p.limit)}`;
      case 'minItems':
        return `${at} must list at least ${String(p.limit)} item(s)`;
      case 'maxItems':
        return `${at} must list at most ${String(p.limit)} items`;
      case 'uniqueItems':
        return `${at} lists the same item twice`;
      default:
        return `${at} ${e.message ?? 'is invalid'}`;
    }
  });
}

/**
 * Validate (and default) an action's input. Returns the input with schema defaults applied, or
 * the list of problems. The input is deep-copied first so the caller's object is left alone.
 */
export function validateActionInput(
  name: ActionSchemaName,
  input: unknown,
): { ok: true; value: any } | { ok: false; errors: string[] } {
  const value = input === undefined ? undefined : JSON.parse(JSON.stringify(input));
  const fn = validator(name);
  if (fn(value)) return { ok: true, value };
  const errors = describe(fn.errors);
  return { ok: false, errors: errors.length ? errors : ['input is invalid'] };
}
