// `npm run bench`: runs every benchmark in bench/ one after another (or the ones named:
// `npm run bench -- pack queue`). Each prints its own figures and a ratio against a named baseline.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const ALL = ['pack', 'git-fetch', 'http', 'queue', 'worker', 'decision', 'serve', 'startup'];
const wanted = process.argv.slice(2).length ? process.argv.slice(2) : ALL;

console.log(
  `# mozharness-archive benchmarks on ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}`,
);
let failed = 0;
for (const name of wanted) {
  const file = path.join(here, `${name}.ts`);
  if (!fs.existsSync(file)) {
    console.log(`\n## ${name}: not present, skipped`);
    continue;
  }
  console.log(`\n## ${name}`);
  try {
    const mod = await import(pathToFileURL(file).href);
    if (typeof mod.run === 'function') await mod.run();
  } catch (e) {
    failed++;
    console.log(`benchmark ${name} failed: ${e instanceof Error ? e.stack : String(e)}`);
  }
}
process.exit(failed ? 1 : 0);
