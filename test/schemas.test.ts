// The one schema set: every file under schemas/ compiles in strict mode, every validator in src/
// goes through src/util/schemas.ts (one strict instance, one lenient one for schemas that are
// data), and the one formatter's sentences name the field and what is wrong with it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import {
  describeSchemaErrors,
  foreignValidator,
  projectValidator,
  schemaDocument,
  schemaFiles,
  SCHEMA_DIR,
  type SchemaFile,
  type SchemaRef,
} from '../src/util/schemas.js';
import { generatedFiles, GENERATED_DIR } from '../scripts/gen-types.js';
import type { Parameters } from '../src/decision/parameters.js';
import type { TasksFor } from '../src/decision/producers.js';
import { redact } from '../src/util/log.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

function tsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? tsFiles(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

describe('schemas: one strict schema set', () => {
  it('compiles every schema under schemas/, and each of its definitions, in strict mode', () => {
    const files = schemaFiles();
    assert.ok(files.includes('worker-payload.json') && files.includes('kind.json'));
    assert.ok(files.some((f) => f.startsWith('taskcluster/')));
    for (const file of files) {
      assert.equal(typeof projectValidator(file as SchemaFile), 'function', file);
      const defs = schemaDocument(file as SchemaFile).definitions as Record<string, unknown>;
      for (const name of Object.keys(defs ?? {})) {
        projectValidator(`${file}#/definitions/${name}` as SchemaRef);
      }
    }
    // and strict mode is not a formality: the same files, compiled on their own, pass strict Ajv
    const strict = addFormats(new Ajv({ strict: true, allErrors: true }));
    for (const file of files) strict.addSchema(schemaDocument(file as SchemaFile), file);
    for (const file of files) strict.getSchema(file);
  });

  it('compiles each schema once', () => {
    assert.equal(projectValidator('worker-payload.json'), projectValidator('worker-payload.json'));
    assert.equal(
      projectValidator('kind.json#/definitions/archive'),
      projectValidator('kind.json#/definitions/archive'),
    );
    assert.throws(
      () => projectValidator('nope.json' as SchemaFile),
      (e: Error) => /no schema nope\.json/.test(e.message),
    );
  });

  it('is the only place in src/ that makes an Ajv instance or reads a schema file', () => {
    const src = path.resolve(SCHEMA_DIR, '../src');
    const offenders = tsFiles(src)
      .filter((f) => !f.endsWith(path.join('util', 'schemas.ts')))
      .filter((f) => {
        const text = fs.readFileSync(f, 'utf8');
        return /new Ajv\b|from 'ajv-formats'|schemas\/[\w-]+\.json['`]/.test(text);
      })
      .map((f) => path.relative(src, f));
    assert.deepEqual(offenders, []);
  });
});

describe('schemas: the error formatter', () => {
  const validate = projectValidator('worker-payload.json');
  const good = {
    maxRunTime: 600,
    repository: 'https://hg.example/mozilla-central',
    revision: 'a'.repeat(40),
    subdir: 'testing/mozharness',
  };
  const sentences = (value: unknown, root = 'payload') => {
    const copy = structuredClone(value);
    assert.equal(validate(copy), false);
    return describeSchemaErrors(validate.errors, copy, { root });
  };

  it('names the missing, the unknown and the mistyped field, with the value it got', () => {
    const { subdir: _s, ...noSubdir } = good;
    assert.deepEqual(sentences({ ...noSubdir, colour: 'red', maxRunTime: 'long' }), [
      'payload.subdir is required',
      'payload.colour is not a known field',
      'payload.maxRunTime must be integer (got "long")',
    ]);
    assert.deepEqual(sentences('hello'), ['payload must be object (got "hello")']);
    assert.deepEqual(sentences('hello', ''), ['(top level) must be object (got "hello")']);
  });

  it('uses [n] for items and the pattern itself when there is no kinder word', () => {
    const v = projectValidator('action-retrigger-multiple.json');
    const input = { requests: [{ tasks: [] }], extra: 1 };
    assert.equal(v(input), false);
    const lines = describeSchemaErrors(v.errors, input, { root: 'input' });
    assert.ok(lines.includes('input.requests[0].tasks must list at least 1 item(s)'), lines.join());
    assert.ok(lines.includes('input.extra is not a known field'), lines.join());
    const m = projectValidator('manifest.json');
    const doc = { version: 1, channels: { 'bad key!': {} } };
    assert.equal(m(doc), false);
    const problems = describeSchemaErrors(m.errors, doc);
    assert.match(problems[0]!, /^channels has an invalid key "bad key!" \(must match pattern \^/);
  });

  it('applies pattern hints and never shows a secret value', () => {
    const v = projectValidator('worker-payload.json');
    const bad = { ...good, maxRunTime: 60, revision: 'tip' };
    assert.equal(v(bad), false);
    assert.deepEqual(
      describeSchemaErrors(v.errors, bad, {
        root: 'payload',
        patternHints: { '/revision': 'must be the full 40-hex revision' },
      }),
      ['payload.revision must be the full 40-hex revision (got "tip")'],
    );
    const c = projectValidator('worker-config.json');
    redact('sekrit-value-123');
    const cfg = { credentials: { clientId: 'x', accessToken: 5 }, rootUrl: 'sekrit-value-123' };
    assert.equal(c(cfg), false);
    const text = describeSchemaErrors(c.errors, cfg, { root: 'config' }).join('\n');
    assert.match(text, /config\.credentials\.accessToken must be string \(got \[redacted\]\)/);
    assert.doesNotMatch(text, /sekrit-value-123/);
    // a secret nested inside the offending value is not shown either
    const nested = { credentials: [{ clientId: 'x', accessToken: 'unregistered-token-9' }] };
    assert.equal(c(nested), false);
    const shownNested = describeSchemaErrors(c.errors, nested, { root: 'config' }).join('\n');
    assert.match(shownNested, /config\.credentials must be object/);
    assert.doesNotMatch(shownNested, /unregistered-token-9/);
  });

  it('says "one of" for a oneOf of required properties instead of one error per branch', () => {
    const c = projectValidator('worker-config.json');
    const base = { workerManager: { workerPoolId: 'proj-mozharness/archive' } };
    assert.equal(c(structuredClone(base)), false);
    const none = describeSchemaErrors(c.errors, base, { root: 'config' });
    assert.ok(
      none.includes(
        'config.workerManager must set one of staticSecret, staticSecretFile, staticSecretEnv',
      ),
      none.join('\n'),
    );
    assert.ok(!none.some((l) => /staticSecret\w* is required/.test(l)), none.join('\n'));
    const two = {
      workerManager: { ...base.workerManager, staticSecret: 's', staticSecretEnv: 'S' },
    };
    assert.equal(c(two), false);
    assert.ok(
      describeSchemaErrors(c.errors, two, { root: 'config' }).includes(
        'config.workerManager must set only one of staticSecret, staticSecretFile, staticSecretEnv',
      ),
    );
  });

  it('caps the list and is never empty for a failed validation', () => {
    const many = Array.from({ length: 30 }, (_, i) => ({
      instancePath: '',
      schemaPath: '#/required',
      keyword: 'required',
      params: { missingProperty: `f${i}` },
    }));
    const lines = describeSchemaErrors(many, {}, { max: 8 });
    assert.equal(lines.length, 9);
    assert.equal(lines[8], '(and 22 more problems)');
    assert.deepEqual(describeSchemaErrors([], {}, { root: 'x' }), ['x is invalid']);
  });
});

describe('schemas: schemas that are data (hook trigger schemas, actions.json input schemas)', () => {
  it('accepts what the real services accept, without strict mode or defaults', () => {
    const fn = foreignValidator({
      $schema: 'http://json-schema.org/draft-06/schema#',
      $id: 'https://example.invalid/mine.json',
      type: 'object',
      required: ['undeclared'],
      properties: { n: { type: 'integer', default: 3 } },
      'x-custom': true,
    });
    const value: Record<string, unknown> = { undeclared: 1 };
    assert.equal(fn(value), true);
    assert.deepEqual(value, { undeclared: 1 }, 'no defaults are applied to user data');
    // the same $id in another schema does not clash, the same schema text compiles once
    const other = foreignValidator({ $id: 'https://example.invalid/mine.json', type: 'string' });
    assert.equal(other('x'), true);
    assert.equal(foreignValidator({ type: 'string' }), other);
  });

  it('refuses an invalid schema with Ajv’s reason, and keeps a bounded cache', () => {
    assert.throws(() => foreignValidator({ type: 'no-such-type' }), /type/);
    assert.throws(() => foreignValidator(null as unknown as Record<string, unknown>), /object/);
    for (let i = 0; i < 600; i++) foreignValidator({ type: 'object', maxProperties: i });
    assert.equal(foreignValidator({ type: 'object', maxProperties: 0 })({}), true);
  });
});

describe('schemas: the generated types', () => {
  it('src/generated is what `npm run gen:types` writes from schemas/ today', async function () {
    this.timeout(60_000);
    const want = await generatedFiles();
    const have = fs.readdirSync(GENERATED_DIR).sort();
    assert.deepEqual(have, [...want.keys()].sort(), 'run npm run gen:types');
    for (const [name, text] of want) {
      const now = fs.readFileSync(path.join(GENERATED_DIR, name), 'utf8');
      assert.ok(now === text, `src/generated/${name} is out of date: run npm run gen:types`);
    }
  });

  it('the CLI’s own list of producers is the schema’s tasks_for', () => {
    type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
    const same: Same<TasksFor, Parameters['tasks_for']> = true;
    assert.equal(same, true);
  });
});
