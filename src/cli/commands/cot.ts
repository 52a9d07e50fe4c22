// `mozharness-archive verify-cot <taskId>`: verify a task's chain of trust as scriptworker and
// fetch-content's verify-hash would, and name the first broken link. Thin over src/worker/cot.ts.
import type { Command } from 'commander';
import { ArchiveError } from '../../util/errors.js';
import { printResult } from '../output.js';

// The core loads only when the command runs (fast --help).
const load = () => import('../../worker/cot.js');

interface Flags {
  publicKey?: string[];
  rootUrl?: string;
  json?: boolean;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function register(program: Command): void {
  program
    .command('verify-cot')
    .description(
      "Verify a task's chain of trust: the ed25519 signature of public/chain-of-trust.json " +
        'against a configured public key, the sha256 of each artifact it lists, and, for a ' +
        "downstream task, its MOZHARNESS_SHA256 against the upstream archive task's chain of " +
        'trust. Exits 1 naming the first broken link.',
    )
    .argument('<taskId>', 'the archive task, or a downstream task depending on it')
    .option(
      '--public-key <base64-or-file>',
      "the workers' ed25519 public key (repeatable; default MOZHARNESS_ARCHIVE_COT_PUBLIC_KEYS, comma-separated)",
      collect,
    )
    .option('--root-url <url>', 'Taskcluster root URL (default TASKCLUSTER_ROOT_URL)')
    .option('--json', 'print the result as one JSON document')
    .action(async (taskId: string, opts: Flags) => {
      const cot = await load();
      const { optionsFromEnv, queueClient } = await import('../../taskcluster/client.js');
      const fromEnv = optionsFromEnv();
      const rootUrl = opts.rootUrl ?? fromEnv?.rootUrl;
      if (!rootUrl)
        throw new ArchiveError('usage', '--root-url or TASKCLUSTER_ROOT_URL is required');
      const queue = queueClient({ ...fromEnv, rootUrl });
      const keys = opts.publicKey?.length
        ? opts.publicKey
        : (process.env.MOZHARNESS_ARCHIVE_COT_PUBLIC_KEYS ?? '').split(',').filter(Boolean);
      if (!keys.length) {
        throw new ArchiveError(
          'usage',
          '--public-key (or MOZHARNESS_ARCHIVE_COT_PUBLIC_KEYS) is required: the chain is only as good as the key it is checked against',
        );
      }
      const result = await cot.verifyChain(taskId, {
        publicKeys: keys.map((k) => cot.readPublicKey(k)),
        reader: cot.httpArtifactReader(rootUrl, queue),
      });
      printResult(opts.json, { taskId, ...result }, () =>
        result.ok
          ? [...result.checked.map((c) => `ok ${c}`), `chain of trust of ${taskId}: verified`]
          : [...result.checked.map((c) => `ok ${c}`), `BROKEN: ${result.broken}`],
      );
      if (!result.ok) process.exitCode = 1;
    });
}
