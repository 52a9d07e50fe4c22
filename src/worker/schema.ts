// The worker's own JSON schemas (schemas/worker-payload.json, schemas/worker-config.json), compiled
// once, and their errors turned into sentences that name the field and say what is wrong with it.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import fs from 'node:fs';
import { scrub } from '../util/log.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

function loadSchema(name: string): Record<string, unknown> {
  // src/worker/ and dist/worker/ are both two levels below the package root.
  const url = new URL(`../../schemas/${name}`, import.meta.url);
  return JSON.parse(fs.readFileSync(url, 'utf8'));
}

let ajv: Ajv | undefined;
const compiled = new Map<string, ValidateFunction>();

export function schemaValidator(
  name: 'worker-payload.json' | 'worker-config.json',
): ValidateFunction {
  let fn = compiled.get(name);
  if (fn) return fn;
  ajv ??= addFormats(new Ajv({ allErrors: true, useDefaults: true, strict: false }));
  fn = ajv.compile(loadSchema(name));
  compiled.set(name, fn);
  return fn;
}

/** Friendlier words for a few patterns. */
const PATTERN_HINTS: Record<string, string> = {
  '/revision': 'must be the full 40-hex revision (short or symbolic revisions are not accepted)',
  '/treeDigest': 'must be a 64-hex sha256 tree digest',
  '/sha256': 'must be a 64-hex sha256',
  '/zipSha256': 'must be a 64-hex sha256',
  '/repository': 'must be an http(s) hgweb or git URL',
  '/subdir': 'must be a path relative to the repository root',
  '/artifactName': 'must be printable ASCII',
  '/taskQueueId': 'must look like <provisionerId>/<workerType>, e.g. proj-mozharness/archive',
  '/workerGroup': 'must be 1-38 characters of [a-zA-Z0-9-_]',
  '/workerId': 'must be 1-38 characters of [a-zA-Z0-9-_]',
  '/rootUrl': 'must be an http(s) URL',
};

function fieldName(root: string, pointer: string): string {
  if (!pointer) return root;
  const parts = pointer
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  return parts.reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : `${acc}.${p}`), root);
}

function shown(value: unknown): string {
  const s = value === undefined ? undefined : scrub(JSON.stringify(value));
  return s === undefined ? 'undefined' : s.length > 80 ? s.slice(0, 77) + '...' : s;
}

/** One sentence per schema error: `payload.revision must be … (got "abc")`. */
export function describeErrors(
  root: string,
  errors: ErrorObject[] | null | undefined,
  value: unknown,
): string[] {
  const out: string[] = [];
  for (const e of errors ?? []) {
    const at = (pointer: string) => fieldName(root, pointer);
    const got = (() => {
      let v: any = value;
      for (const p of e.instancePath.split('/').slice(1)) v = v?.[p.replace(/~1/g, '/')];
      return shown(v);
    })();
    const generic = e.instancePath.replace(/\/\d+(?=\/|$)/g, '');
    switch (e.keyword) {
      case 'required':
        out.push(`${at(e.instancePath)}.${(e.params as any).missingProperty} is required`);
        break;
      case 'additionalProperties':
        out.push(
          `${at(e.instancePath)}.${(e.params as any).additionalProperty} is not a known field`,
        );
        break;
      case 'pattern':
        if ((e as any).propertyName !== undefined) {
          out.push(
            `${at(e.instancePath)} has an invalid name ${shown((e as any).propertyName)} (must match ${(e.params as any).pattern})`,
          );
          break;
        }
        out.push(
          `${at(e.instancePath)} ${PATTERN_HINTS[generic] ?? `must match ${(e.params as any).pattern}`} (got ${got})`,
        );
        break;
      case 'type':
        out.push(`${at(e.instancePath)} must be ${(e.params as any).type} (got ${got})`);
        break;
      case 'enum':
        out.push(
          `${at(e.instancePath)} must be one of ${(e.params as any).allowedValues.map((v: unknown) => JSON.stringify(v)).join(', ')} (got ${got})`,
        );
        break;
      case 'propertyNames':
        break; // reported by the nested pattern error
      default:
        out.push(`${at(e.instancePath)} ${e.message ?? 'is invalid'} (got ${got})`);
    }
  }
  return [...new Set(out)];
}
