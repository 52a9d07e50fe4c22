// Conformance against the upstream Taskcluster and Treeherder schemas in ../shared/taskcluster/.
// Tests only: runtime code never reads ../shared.
//
//   assertUpstream('/schemas/queue/v1/create-task-request.json', task)
//   assertUpstream('treeherder/task-treeherder-config.json', task.extra.treeherder)
//   upstreamReference('queue') → the upstream API reference (references/queue/v1/api.json)
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

const here = path.dirname(fileURLToPath(import.meta.url));
/** ../shared/taskcluster, found beside the checkout (CI lays shared/ beside the clone). */
export const SHARED_TASKCLUSTER = (() => {
  const candidates = [
    process.env.MOZHARNESS_ARCHIVE_SHARED &&
      path.join(process.env.MOZHARNESS_ARCHIVE_SHARED, 'taskcluster'),
    path.resolve(here, '../../../shared/taskcluster'),
  ].filter(Boolean) as string[];
  const found = candidates.find((c) => fs.existsSync(path.join(c, 'schemas')));
  if (!found)
    throw new Error(`upstream reference data not found; looked in ${candidates.join(', ')}`);
  return found;
})();

function walk(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = path.join(dir, d.name);
    return d.isDirectory() ? walk(p) : d.name.endsWith('.json') ? [p] : [];
  });
}

let ajv: Ajv | undefined;
const compiled = new Map<string, ValidateFunction>();

function validator(): Ajv {
  if (ajv) return ajv;
  const a = new Ajv({
    strict: false,
    allErrors: true,
    validateSchema: false,
    validateFormats: true,
  });
  addFormats(a);
  for (const file of walk(path.join(SHARED_TASKCLUSTER, 'schemas'))) {
    const schema = JSON.parse(fs.readFileSync(file, 'utf8'));
    delete schema.$schema; // draft-06 / upstream metaschema: validate as the draft-07 superset
    a.addSchema(schema, String(schema.$id).replace(/#$/, ''));
  }
  for (const file of walk(path.join(SHARED_TASKCLUSTER, 'treeherder'))) {
    const schema = JSON.parse(fs.readFileSync(file, 'utf8'));
    delete schema.$schema;
    delete schema.$id;
    a.addSchema(schema, 'treeherder/' + path.basename(file));
  }
  ajv = a;
  return a;
}

/** Validate `value` against an upstream schema; returns error strings (empty when valid). */
export function upstreamErrors(schemaId: string, value: unknown): string[] {
  const id = schemaId.replace(/#$/, '');
  let fn = compiled.get(id);
  if (!fn) {
    fn = validator().getSchema(id);
    if (!fn) throw new Error(`no upstream schema ${id}`);
    compiled.set(id, fn);
  }
  if (fn(value)) return [];
  return (fn.errors ?? []).map(
    (e) => `${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`,
  );
}

/** Throws with every validation error when `value` does not match the upstream schema. */
export function assertUpstream(schemaId: string, value: unknown, what = 'value'): void {
  const errors = upstreamErrors(schemaId, value);
  if (errors.length) {
    throw new Error(`${what} does not validate against ${schemaId}:\n  ${errors.join('\n  ')}`);
  }
}

/** The upstream API reference of a service (queue, index, hooks, auth, object). */
export function upstreamReference(service: string): any {
  return JSON.parse(
    fs.readFileSync(path.join(SHARED_TASKCLUSTER, 'references', service, 'v1', 'api.json'), 'utf8'),
  );
}

/** Schema id of a method's input/output in the upstream reference, e.g. ('queue','createTask','input'). */
export function upstreamMethodSchema(
  service: string,
  method: string,
  which: 'input' | 'output',
): string | undefined {
  const entry = upstreamReference(service).entries.find((e: any) => e.name === method);
  const ref: string | undefined = entry?.[which];
  if (!ref) return undefined;
  // references name schemas relative to the service ('v1/x.json#') or by URL/path
  const m = /\/schemas\/.*$/.exec(ref);
  if (m) return m[0].replace(/#$/, '');
  return `/schemas/${service}/${ref.replace(/#$/, '')}`;
}
