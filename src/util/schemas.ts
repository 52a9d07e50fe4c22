// The project's JSON schemas (every file under schemas/), validated by ONE strict Ajv instance that
// compiles each schema once, and the one formatter that turns Ajv's errors into sentences naming
// the field and what is wrong with it (`payload.revision must be the full 40-hex revision (got
// "abc")`). Schemas that arrive as data (a hook's triggerSchema, an action's schema in someone's
// actions.json) are not ours to lint: they get their own lenient instance, see foreignValidator.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ArchiveError } from './errors.js';
import { clean, scrub, SECRET_KEYS } from './log.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

/** schemas/ at the package root (src/util/ and dist/util/ are both two levels below it). */
export const SCHEMA_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../schemas',
);

/** A file under schemas/, by its path relative to that directory. */
export type SchemaFile =
  | 'action-add-new-jobs.json'
  | 'action-rebuild-mozharness-archive.json'
  | 'action-retrigger-multiple.json'
  | 'action-retrigger.json'
  | 'archive-metadata.json'
  | 'config.json'
  | 'kind.json'
  | 'lookup-config.json'
  | 'manifest.json'
  | 'parameters.json'
  | 'worker-config.json'
  | 'worker-payload.json'
  | `taskcluster/${string}.json`;

/** A schema file, or a fragment of one (`kind.json#/definitions/archive`). */
export type SchemaRef = SchemaFile | `${SchemaFile}#${string}`;

/** Every `*.json` under schemas/, relative to it, sorted. */
export function schemaFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.json'))
        out.push(path.relative(SCHEMA_DIR, p).split(path.sep).join('/'));
    }
  };
  walk(SCHEMA_DIR);
  return out.sort();
}

const documents = new Map<string, Record<string, unknown>>();

/** The parsed schema document (read once). */
export function schemaDocument(file: SchemaFile): Record<string, unknown> {
  let doc = documents.get(file);
  if (!doc) {
    doc = JSON.parse(fs.readFileSync(path.join(SCHEMA_DIR, file), 'utf8')) as Record<
      string,
      unknown
    >;
    documents.set(file, doc);
  }
  return doc;
}

let project: Ajv | undefined;
const compiled = new Map<string, ValidateFunction>();

/**
 * The one instance for the project's own schemas: strict (an unknown keyword, a `required` naming
 * no property, a `properties` without `type: object` are mistakes in our schemas and fail the
 * tests), every error reported (verbose: with its schema, for the sentences below), defaults
 * applied to the validated value. Every file is registered
 * under its name so schemas may `$ref` each other; each is compiled on first use, once.
 */
function projectAjv(): Ajv {
  if (!project) {
    project = addFormats(
      new Ajv({ strict: true, allErrors: true, useDefaults: true, verbose: true }),
    );
    for (const file of schemaFiles()) {
      project.addSchema(structuredClone(schemaDocument(file as SchemaFile)), file);
    }
  }
  return project;
}

/** The compiled validator of a project schema (defaults are applied to what it validates). */
export function projectValidator(ref: SchemaRef): ValidateFunction {
  let fn = compiled.get(ref);
  if (!fn) {
    fn = projectAjv().getSchema(ref);
    if (!fn) throw new ArchiveError('internal', `no schema ${ref} under ${SCHEMA_DIR}`);
    compiled.set(ref, fn);
  }
  return fn;
}

let foreign: Ajv | undefined;
const foreignCompiled = new Map<string, { schema: object; fn: ValidateFunction }>();
const FOREIGN_CACHE = 256;

/**
 * A validator for a schema that is data rather than part of the project: a hook's triggerSchema,
 * an action's input schema read from a decision task's actions.json. Those are written for the
 * real services (Taskcluster's hooks, Treeherder), which accept any valid draft-07 schema, so they
 * are compiled without strict mode (an unknown keyword or a `required` naming an undeclared
 * property is legal JSON schema) and without defaults (the real services do not apply them). Their
 * `$id`/`$schema` are dropped, so one user's `$id` never clashes with another's. Compiled
 * validators are cached by the schema's text, at most FOREIGN_CACHE of them, so hostile input
 * cannot grow the cache without bound. Throws (Ajv's message) when the schema is invalid.
 */
export function foreignValidator(schema: Record<string, unknown>): ValidateFunction {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) {
    throw new Error('a schema must be a JSON object');
  }
  const { $id: _id, $schema: _meta, ...rest } = schema;
  const key = JSON.stringify(rest);
  const hit = foreignCompiled.get(key);
  if (hit) {
    foreignCompiled.delete(key);
    foreignCompiled.set(key, hit);
    return hit.fn;
  }
  foreign ??= addFormats(new Ajv({ strict: false, allErrors: true, useDefaults: false }));
  const copy = JSON.parse(key) as object;
  const fn = foreign.compile(copy);
  foreignCompiled.set(key, { schema: copy, fn });
  if (foreignCompiled.size > FOREIGN_CACHE) {
    const [oldest, entry] = foreignCompiled.entries().next().value as [string, { schema: object }];
    foreignCompiled.delete(oldest);
    foreign.removeSchema(entry.schema);
  }
  return fn;
}

/** One schema problem: the field (dotted, `[n]` for items) and what is wrong with it. */
export interface SchemaProblem {
  field: string;
  message: string;
}

export interface DescribeOptions {
  /** Name of the validated value, the first part of each field (`payload`, `config`, `input`). */
  root?: string;
  /** Kinder words than "must match pattern …" for some fields, by JSON pointer with item indices removed. */
  patternHints?: Readonly<Record<string, string>>;
  /** At most this many problems (default 20); the rest are counted in a last line. */
  max?: number;
}

function unescape(segment: string): string {
  return segment.replace(/~1/g, '/').replace(/~0/g, '~');
}

function segments(pointer: string): string[] {
  return pointer ? pointer.split('/').slice(1).map(unescape) : [];
}

function fieldName(root: string, parts: readonly string[]): string {
  const name = parts.reduce(
    (acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p),
    root,
  );
  return name || '(top level)';
}

function valueAt(value: unknown, parts: readonly string[]): unknown {
  let v = value;
  for (const p of parts) {
    v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[p] : undefined;
  }
  return v;
}

/** A short, secret-free rendering of the offending value. */
function shown(value: unknown, parts: readonly string[]): string {
  if (parts.some((p) => SECRET_KEYS.test(p))) return '[redacted]';
  const s = value === undefined ? undefined : scrub(JSON.stringify(clean(value)));
  return s === undefined ? 'undefined' : s.length > 80 ? s.slice(0, 77) + '...' : s;
}

/** Keywords whose sentence ends with the value that broke them. */
const SHOWS_VALUE = new Set([
  'type',
  'enum',
  'const',
  'pattern',
  'format',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'minLength',
  'maxLength',
  'multipleOf',
]);

function sentence(e: ErrorObject, hints: Readonly<Record<string, string>>): string | undefined {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
    case 'additionalProperties':
      return undefined; // the field is the missing or unknown property, see problem()
    case 'propertyNames':
    case 'if':
      return undefined; // reported by the nested error / the branch that failed
    case 'type':
      return `must be ${String(p.type)}`;
    case 'enum':
      return `must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'const':
      return `must be ${JSON.stringify(p.allowedValue)}`;
    case 'pattern':
      return (
        hints[e.instancePath.replace(/\/\d+(?=\/|$)/g, '')] ??
        `must match pattern ${String(p.pattern)}`
      );
    case 'minItems':
      return `must list at least ${String(p.limit)} item(s)`;
    case 'maxItems':
      return `must list at most ${String(p.limit)} item(s)`;
    case 'uniqueItems':
      return 'lists the same item twice';
    case 'false schema':
      return 'must not be set';
    default:
      return e.message ?? 'is invalid';
  }
}

function problem(
  e: ErrorObject,
  value: unknown,
  root: string,
  hints: Readonly<Record<string, string>>,
): SchemaProblem | undefined {
  const parts = segments(e.instancePath);
  const p = e.params as Record<string, unknown>;
  if (e.keyword === 'required') {
    return {
      field: fieldName(root, [...parts, String(p.missingProperty)]),
      message: 'is required',
    };
  }
  if (e.keyword === 'additionalProperties') {
    return {
      field: fieldName(root, [...parts, String(p.additionalProperty)]),
      message: 'is not a known field',
    };
  }
  const key = (e as ErrorObject & { propertyName?: string }).propertyName;
  if (key !== undefined) {
    const why = e.keyword === 'pattern' ? `must match pattern ${String(p.pattern)}` : e.message;
    return {
      field: fieldName(root, parts),
      message: `has an invalid key ${shown(key, parts)} (${why ?? 'invalid'})`,
    };
  }
  const words = sentence(e, hints);
  if (words === undefined) return undefined;
  const got = SHOWS_VALUE.has(e.keyword) ? ` (got ${shown(valueAt(value, parts), parts)})` : '';
  return { field: fieldName(root, parts), message: `${words}${got}` };
}

/** The properties of a `oneOf` whose every branch only requires properties, e.g. "one of
 * staticSecret, staticSecretFile, staticSecretEnv"; undefined for any other `oneOf`. */
function exclusiveProperties(e: ErrorObject): string[] | undefined {
  if (e.keyword !== 'oneOf' || !Array.isArray(e.schema)) return undefined;
  const names: string[] = [];
  for (const branch of e.schema as unknown[]) {
    const b = branch as { required?: unknown };
    if (!b || typeof b !== 'object' || !Array.isArray(b.required)) return undefined;
    const keys = Object.keys(b).filter((k) => k !== 'required' && k !== 'properties');
    if (keys.length) return undefined;
    names.push(...(b.required as string[]));
  }
  return names;
}

/** A `oneOf` of required properties reads as one sentence instead of one error per branch. */
function exclusiveProblems(
  errors: readonly ErrorObject[],
  root: string,
): { problems: SchemaProblem[]; covered: string[] } {
  const problems: SchemaProblem[] = [];
  const covered: string[] = [];
  for (const e of errors) {
    const names = exclusiveProperties(e);
    if (!names) continue;
    covered.push(`${e.schemaPath}/`);
    const passing = (e.params as { passingSchemas?: unknown }).passingSchemas;
    problems.push({
      field: fieldName(root, segments(e.instancePath)),
      message: Array.isArray(passing)
        ? `must set only one of ${names.join(', ')}`
        : `must set one of ${names.join(', ')}`,
    });
  }
  return { problems, covered };
}

/** Ajv's errors as problems, one per distinct field and sentence. */
export function schemaProblems(
  errors: readonly ErrorObject[] | null | undefined,
  value: unknown,
  opts: DescribeOptions = {},
): SchemaProblem[] {
  const seen = new Set<string>();
  const out: SchemaProblem[] = [];
  const exclusive = exclusiveProblems(errors ?? [], opts.root ?? '');
  for (const e of errors ?? []) {
    if (exclusive.covered.some((c) => e.schemaPath.startsWith(c))) continue;
    const pr =
      exclusiveProperties(e) !== undefined
        ? exclusive.problems.shift()
        : problem(e, value, opts.root ?? '', opts.patternHints ?? {});
    if (!pr) continue;
    const k = `${pr.field} ${pr.message}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(pr);
  }
  return out;
}

/** One sentence per problem: `<field> <what is wrong>`; never empty for a failed validation. */
export function describeSchemaErrors(
  errors: readonly ErrorObject[] | null | undefined,
  value: unknown,
  opts: DescribeOptions = {},
): string[] {
  const lines = schemaProblems(errors, value, opts).map((p) => `${p.field} ${p.message}`);
  const max = opts.max ?? 20;
  if (lines.length > max) {
    const more = lines.length - max;
    return [...lines.slice(0, max), `(and ${more} more problem${more === 1 ? '' : 's'})`];
  }
  return lines.length ? lines : [`${opts.root || '(top level)'} is invalid`];
}

/**
 * A generated schema type after validation has applied the schema's defaults: the properties
 * named in K (each has a `default` in the schema) are then always present.
 */
export type Defaulted<T, K extends keyof T> = Omit<T, K> & { [P in K]-?: Exclude<T[P], undefined> };
