// `build`, `digest` and `unpack`: the archive engine on the command line.
import { Command, Option } from 'commander';
import type { FetchPolicy, SourceSpec } from '../../archive/index.js';
import {
  ARCHIVE_FORMATS,
  DEFAULT_UNPACK_LIMITS,
  RATIO_FLOOR_BYTES,
  type ArchiveFormat,
  type UnpackLimits,
} from '../../archive/unpack-limits.js';
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

/** `mozharness-archive build`. */
function buildCommand(program: Command): void {
  sourceOptions(
    program
      .command('build')
      .description(
        'Build the byte-reproducible tar.gz (and zip) of one subdirectory of a repository at a\n' +
          'revision. The same tree always gives the same bytes, whichever kind of source it comes\n' +
          'from, on any machine and with any number of threads.',
      ),
  )
    .requiredOption('--out <file.tar.gz>', 'where to write the archive (written atomically)')
    .option(
      '--zip-out <file.zip>',
      'also write the zip of the same tree there (mozharness.zip; its sha256 and size are\n' +
        'always printed)',
    )
    .option(
      '--threads <n>',
      'deflate threads (default: one per core; 0 = none). The bytes are the same whatever n',
      (v: string) => {
        if (!/^\d+$/.test(v))
          throw new ArchiveError('usage', `--threads must be a whole number (got ${v})`);
        return Number(v);
      },
    )
    .addHelpText(
      'after',
      '\nWith --json, prints the archive metadata document (schemas/archive-metadata.json):\n' +
        '  {sha256, size, zip: {sha256, size}, treeDigest, files, revision, subdir, format,\n' +
        '   formatVersion, repository}\n\n' +
        'Example:\n  mozharness-archive build --source https://hg.mozilla.org/mozilla-central \\\n' +
        '    --revision tip --subdir testing/mozharness --out mozharness.tar.gz \\\n' +
        '    --zip-out mozharness.zip --json',
    )
    .action(async (flags: SourceFlags & { out: string; zipOut?: string; threads?: number }) => {
      const { spec, policy } = await resolveSource(flags);
      const { buildArchive, sourceRepository } = await engine();
      const r = await buildArchive({
        source: spec,
        revision: flags.revision,
        subdir: flags.subdir,
        policy,
        out: flags.out,
        zipOut: flags.zipOut,
        threads: flags.threads,
        log: log(),
      });
      const doc = { ...r, repository: sourceRepository(spec) };
      printResult(flags.json, doc, () => [
        `archive:     ${flags.out}`,
        `sha256:      ${r.sha256}`,
        `size:        ${r.size} bytes`,
        ...(flags.zipOut ? [`zip:         ${flags.zipOut}`] : []),
        `zip sha256:  ${r.zip?.sha256}`,
        `zip size:    ${r.zip?.size} bytes`,
        `tree digest: ${r.treeDigest}`,
        `files:       ${r.files}`,
        `revision:    ${r.revision}`,
        `subdir:      ${r.subdir}`,
        `repository:  ${doc.repository}`,
        `format:      ${r.format} v${r.formatVersion}`,
      ]);
    });
}

/** `mozharness-archive digest`. */
function digestCommand(program: Command): void {
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
}

/** `mozharness-archive unpack`. */
function unpackCommand(program: Command): void {
  const d = DEFAULT_UNPACK_LIMITS;
  program
    .command('unpack')
    .exitOverride()
    .description(
      'Unpack a tar.gz or zip archive safely: into a temporary directory beside --dest, sha256\n' +
        'checked before anything is visible, then renamed into place. --dest must not exist or be\n' +
        'an empty dir. Every symlink is resolved through the links unpacked before it and refused\n' +
        'when it leaves the tree at any depth; also refused: absolute paths, "..", entries written\n' +
        'through a symlink, escaping hard links, devices, FIFOs, setuid/setgid bits, names over\n' +
        '4096 bytes (or a component over 255) and archives over the limits below, all counted\n' +
        'from the headers before anything big is written. On refusal --dest is left as it was\n' +
        '(exit code 1).',
    )
    .argument('<file>', 'the tar.gz or zip archive (told apart by their first bytes)')
    .requiredOption('--dest <dir>', 'directory to create with the archive contents')
    .option('--sha256 <hex>', 'expected sha256 of the archive file')
    .addOption(
      new Option('--format <format>', 'refuse the file unless it is in this format').choices([
        ...ARCHIVE_FORMATS,
      ]),
    )
    .option(
      '--max-files <n>',
      `most entries of any kind: files, dirs, links (default ${d.maxFiles})`,
      positiveInt('--max-files'),
    )
    .option(
      '--max-file-bytes <n>',
      `largest file, in bytes (default ${d.maxFileBytes})`,
      positiveInt('--max-file-bytes'),
    )
    .option(
      '--max-total-bytes <n>',
      `most content in all, in bytes (default ${d.maxTotalBytes})`,
      positiveInt('--max-total-bytes'),
    )
    .option(
      '--max-ratio <n>',
      `most content per archive byte, beyond the first ${RATIO_FLOOR_BYTES / 1024 / 1024} MiB (default ${d.maxRatio})`,
      positiveInt('--max-ratio'),
    )
    .option('--json', 'print one JSON document instead of text')
    .action(
      async (
        file: string,
        flags: {
          dest: string;
          sha256?: string;
          format?: ArchiveFormat;
          maxFiles?: number;
          maxFileBytes?: number;
          maxTotalBytes?: number;
          maxRatio?: number;
          json?: boolean;
        },
      ) => {
        const limits: Partial<UnpackLimits> = {
          maxFiles: flags.maxFiles,
          maxFileBytes: flags.maxFileBytes,
          maxTotalBytes: flags.maxTotalBytes,
          maxRatio: flags.maxRatio,
        };
        const { unpackArchive } = await engine();
        const r = await unpackArchive(file, flags.dest, {
          sha256: flags.sha256,
          limits,
          ...(flags.format ? { format: flags.format } : {}),
        });
        printResult(flags.json, { ...r, dest: flags.dest }, () => [
          `unpacked ${r.files} files (${r.bytes} bytes) into ${flags.dest}`,
        ]);
      },
    );
}

export function register(program: Command): void {
  buildCommand(program);
  digestCommand(program);
  unpackCommand(program);
}
