// Generates src/generated/*.ts, the TypeScript types of the project's schemas (schemas/*.json),
// so types and schemas cannot drift: `npm run gen:types` (also part of `npm run build`) rewrites
// them, `--check` only says which are out of date (test/schemas.test.ts runs it).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compile, type JSONSchema } from 'json-schema-to-typescript';
import * as prettier from 'prettier';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const schemaDir = path.join(root, 'schemas');
export const GENERATED_DIR = path.join(root, 'src', 'generated');

const BANNER =
  '// Generated from schemas/NAME by `npm run gen:types` (json-schema-to-typescript): do not edit;\n' +
  '// change the schema and regenerate. test/schemas.test.ts fails when this file is out of date.\n';

/** The schemas whose types the code uses: every top-level file of schemas/. */
function schemaNames(): string[] {
  return fs
    .readdirSync(schemaDir)
    .filter((f) => f.endsWith('.json'))
    .sort();
}

/** `worker-payload.json` → `WorkerPayload` */
function typeName(file: string): string {
  return file
    .replace(/\.json$/, '')
    .split(/[-_]/)
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join('');
}

/** Formatted as `prettier --check .` expects, with the project's own configuration. */
async function formatted(text: string, name: string): Promise<string> {
  const file = path.join(GENERATED_DIR, name);
  const options = (await prettier.resolveConfig(file)) ?? {};
  return prettier.format(text, { ...options, filepath: file });
}

/** file name under src/generated → its text; index.ts names each schema's own type (a schema's
 * definitions are exported by its own file). */
export async function generatedFiles(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const index: string[] = [];
  for (const file of schemaNames()) {
    const schema = JSON.parse(fs.readFileSync(path.join(schemaDir, file), 'utf8')) as JSONSchema;
    const name = typeName(file);
    const { $id: _id, ...rest } = schema;
    const text = await compile({ ...rest, title: name } as JSONSchema, name, {
      bannerComment: BANNER.replace('NAME', file),
      unreachableDefinitions: true,
      ignoreMinAndMaxItems: true,
      format: false,
      cwd: schemaDir,
    });
    const target = file.replace(/\.json$/, '.ts');
    out.set(target, await formatted(text, target));
    index.push(`export type { ${name} } from './${target.replace(/\.ts$/, '.js')}';`);
  }
  const banner = BANNER.replace('schemas/NAME', 'schemas/*.json');
  out.set('index.ts', await formatted(`${banner}\n${index.join('\n')}\n`, 'index.ts'));
  return out;
}

async function main(): Promise<void> {
  const check = process.argv.includes('--check');
  const files = await generatedFiles();
  const stale: string[] = [];
  fs.mkdirSync(GENERATED_DIR, { recursive: true });
  const present = new Set(fs.readdirSync(GENERATED_DIR));
  for (const [name, text] of files) {
    const file = path.join(GENERATED_DIR, name);
    present.delete(name);
    const now = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined;
    if (now === text) continue;
    stale.push(name);
    if (!check) {
      fs.writeFileSync(`${file}.tmp`, text);
      fs.renameSync(`${file}.tmp`, file);
    }
  }
  for (const name of present) {
    stale.push(name);
    if (!check) fs.rmSync(path.join(GENERATED_DIR, name));
  }
  if (check && stale.length) {
    console.error(
      `src/generated is out of date with schemas/ (${stale.join(', ')}): run npm run gen:types`,
    );
    process.exitCode = 1;
  } else if (!check) {
    if (stale.length) console.log(`src/generated: wrote ${stale.join(', ')}`);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main();
}
