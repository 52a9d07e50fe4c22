// The `mozharness-archive` command. Thin by design: each command parses its flags, calls the typed
// core in src/<stage>/ and prints the result (human text, or one JSON document with --json).
import { Command, CommanderError } from 'commander';
import { ArchiveError, errorMessage } from '../util/errors.js';
import { scrub } from '../util/log.js';
import { modulesFor } from './commands/index.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/**
 * The program with its commands. Given the command line, only the module of the command it runs
 * is loaded and registered (all of them when it names none); without, every command.
 */
export async function buildProgram(argv?: string[]): Promise<Command> {
  const program = new Command();
  program
    .name('mozharness-archive')
    .description(
      'Content-addressed, byte-reproducible archives of an in-tree harness (testing/mozharness),\n' +
        'built and indexed by Taskcluster on every push, looked up by revision or content digest.',
    )
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ sortSubcommands: false });
  const modules = modulesFor(argv?.[2]);
  for (const register of await Promise.all(modules.map((m) => m.load()))) register(program);
  return program;
}

export async function main(argv: string[] = process.argv): Promise<number> {
  const program = await buildProgram(argv);
  program.exitOverride();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and version exit 0; usage errors were already printed by commander.
      return e.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof ArchiveError) {
      process.stderr.write(`mozharness-archive: error: ${scrub(e.message)}\n`);
      return e.code === 'usage' ? 2 : 1;
    }
    process.stderr.write(`mozharness-archive: internal error: ${scrub(errorMessage(e))}\n`);
    if (process.env.MOZHARNESS_ARCHIVE_DEBUG && e instanceof Error && e.stack) {
      process.stderr.write(scrub(e.stack) + '\n');
    }
    return 1;
  }
}

const invokedDirectly =
  process.argv[1] !== undefined &&
  (import.meta.url === new URL(`file://${process.argv[1]}`).href ||
    /mozharness-archive(\.js)?$/.test(process.argv[1]));
if (invokedDirectly) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`mozharness-archive: internal error: ${scrub(errorMessage(e))}\n`);
      process.exitCode = 1;
    },
  );
}
