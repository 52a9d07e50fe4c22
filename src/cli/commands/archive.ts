// `build`, `digest` and `unpack`: the archive engine on the command line.
import { Command, Option } from 'commander';
import type { FetchPolicy, Limits, SourceSpec } from '../../archive/index.js';
import { ArchiveError } from '../../util/errors.js';
import { createLogger } from '../../util/log.js';
import { printResult } from '../output.js';

interface SourceFlags {
  source: string;
  revision: string;
  subdir: string;
  vcs?: 'hg' | 'git';
  allowRepo: string[];
  json?: boolean;
}

const collect = (value: string, previous: string[]) => [...previous, value];

function positiveInt(name: string) {
  return (value: string) => {
    if (!/^\d+$/.test(value) || Number(value) <= 0) {
      throw new ArchiveError('usage', `${name} must be a positive integer, got ${value}`);
    }
    return Number(value);
  };
}

function sourceOptions(cmd: Command): Command {
  return cmd
    .exitOverride() // usage errors reach main(), which exits 2
    .requiredOption(
      '--source <repo>',
      'hgweb repository URL (https://hg.mozilla.org/mozilla-central), git URL (ending .git or ' +
        'file://), local Mercurial or git repository, or a checkout directory',
    )
    .requiredOption(
      '--revision <rev>',
      'revision to archive: full or short node, tag, bookmark or branch (resolved to 40 hex)',
    )
    .requiredOption('--subdir <path>', 'subdirectory to archive, e.g. testing/mozharness')
    .addOption(
      new Option('--vcs <kind>', 'treat --source as this kind of repository').choices([
        'hg',
        'git',
      ]),
    )
    .option(
      '--allow-repo <prefix>',
      'repository URL prefix that may be fetched (repeatable); a URL given as --source is allowed',
      collect,
      [],
    )
    .option('--json', 'print one JSON document instead of text');
}

/** The archive engine loads when a command runs, not to print help. */
const engine = () => import('../../archive/index.js');

async function resolveSource(
  flags: SourceFlags,
): Promise<{ spec: SourceSpec; policy: FetchPolicy }> {
  const { parseSource } = await engine();
  const spec = parseSource(flags.source, flags.vcs);
  const allowRepos = [...flags.allowRepo];
  if ('url' in spec) allowRepos.push(spec.url);
  return { spec, policy: { allowRepos } };
}

const log = () =>
  createLogger({ level: process.env.MOZHARNESS_ARCHIVE_LOG_LEVEL ? undefined : 'warn' });

export function register(program: Command): void {
  sourceOptions(
    program
      .command('build')
      .description(
        'Build the byte-reproducible tar.gz of one subdirectory of a repository at a revision.\n' +
          'The same tree always gives the same bytes, whichever kind of source it comes from.',
      ),
  )
    .requiredOption('--out <file.tar.gz>', 'where to write the archive (written atomically)')
    .addHelpText(
      'after',
      '\nWith --json, prints the archive metadata document (schemas/archive-metadata.json):\n' +
        '  {sha256, size, treeDigest, files, revision, subdir, format, formatVersion, repository}\n\n' +
        'Example:\n  mozharness-archive build --source https://hg.mozilla.org/mozilla-central \\\n' +
        '    --revision tip --subdir testing/mozharness --out mozharness.tar.gz --json',
    )
    .action(async (flags: SourceFlags & { out: string }) => {
      const { spec, policy } = await resolveSource(flags);
      const { buildArchive, sourceRepository } = await engine();
      const r = await buildArchive({
        source: spec,
        revision: flags.revision,
        subdir: flags.subdir,
        policy,
        out: flags.out,
        log: log(),
      });
      const doc = { ...r, repository: sourceRepository(spec) };
      printResult(flags.json, doc, () => [
        `archive:     ${flags.out}`,
        `sha256:      ${r.sha256}`,
        `size:        ${r.size} bytes`,
        `tree digest: ${r.treeDigest}`,
        `files:       ${r.files}`,
        `revision:    ${r.revision}`,
        `subdir:      ${r.subdir}`,
        `repository:  ${doc.repository}`,
        `format:      ${r.format} v${r.formatVersion}`,
      ]);
    });

  sourceOptions(
    program
      .command('digest')
      .description(
        'Compute the tree digest (the cache key of an archive) of one subdirectory at a revision,\n' +
          'without writing an archive.',
      ),
  )
    .addHelpText(
      'after',
      '\nWith --json, prints {treeDigest, files, revision, subdir, repository, formatVersion}.',
    )
    .action(async (flags: SourceFlags) => {
      const { spec, policy } = await resolveSource(flags);
      const { computeTreeDigest, sourceRepository, FORMAT_VERSION } = await engine();
      const r = await computeTreeDigest({
        source: spec,
        revision: flags.revision,
        subdir: flags.subdir,
        policy,
        log: log(),
      });
      const doc = { ...r, repository: sourceRepository(spec), formatVersion: FORMAT_VERSION };
      printResult(flags.json, doc, () => [
        `tree digest: ${r.treeDigest}`,
        `files:       ${r.files}`,
        `revision:    ${r.revision}`,
        `subdir:      ${r.subdir}`,
      ]);
    });

  program
    .command('unpack')
    .exitOverride()
    .description(
      'Unpack an archive safely: into a temporary directory beside --dest, sha256 checked before\n' +
        'anything is visible, then renamed into place. --dest must not exist or be an empty dir.\n' +
        'Refuses absolute paths, "..", escaping symlinks/hardlinks, devices, FIFOs, setuid/setgid\n' +
        'bits and entries over the limits; on refusal --dest is left as it was (exit code 1).',
    )
    .argument('<file>', 'the tar.gz archive')
    .requiredOption('--dest <dir>', 'directory to create with the archive contents')
    .option('--sha256 <hex>', 'expected sha256 of the archive file')
    .option('--max-files <n>', 'most entries allowed', positiveInt('--max-files'))
    .option(
      '--max-file-bytes <n>',
      'largest entry allowed, in bytes',
      positiveInt('--max-file-bytes'),
    )
    .option(
      '--max-total-bytes <n>',
      'most content allowed, in bytes',
      positiveInt('--max-total-bytes'),
    )
    .option('--json', 'print one JSON document instead of text')
    .action(
      async (
        file: string,
        flags: {
          dest: string;
          sha256?: string;
          maxFiles?: number;
          maxFileBytes?: number;
          maxTotalBytes?: number;
          json?: boolean;
        },
      ) => {
        const limits: Partial<Limits> = {};
        if (flags.maxFiles) limits.maxFiles = flags.maxFiles;
        if (flags.maxFileBytes) limits.maxFileBytes = flags.maxFileBytes;
        if (flags.maxTotalBytes) limits.maxTotalBytes = flags.maxTotalBytes;
        const { unpackArchive } = await engine();
        const r = await unpackArchive(file, flags.dest, { sha256: flags.sha256, limits });
        printResult(flags.json, { ...r, dest: flags.dest }, () => [
          `unpacked ${r.files} files (${r.bytes} bytes) into ${flags.dest}`,
        ]);
      },
    );
}
