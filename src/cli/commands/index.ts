// Every command module registers its commands on the program. One module per stage. A module is
// loaded only when its commands may run: `mozharness-archive build …` loads archive.ts (and what
// it imports) alone; --help, `help` or an unknown command load them all. Each entry names the
// top-level commands its module registers, in order (test/cli.test.ts checks them).
import type { Command } from 'commander';

export type Register = (program: Command) => void;

export interface CommandModule {
  commands: readonly string[];
  load: () => Promise<Register>;
}

export const commandModules: readonly CommandModule[] = [
  {
    commands: ['build', 'digest', 'unpack'],
    load: async () => (await import('./archive.js')).register,
  },
  { commands: ['upload'], load: async () => (await import('./upload.js')).register },
  {
    commands: ['render-tcyml', 'decision', 'graph'],
    load: async () => (await import('./decision.js')).register,
  },
  { commands: ['worker'], load: async () => (await import('./worker.js')).register },
  { commands: ['verify-cot'], load: async () => (await import('./cot.js')).register },
  { commands: ['action-callback'], load: async () => (await import('./actions.js')).register },
  {
    commands: ['find', 'fetch', 'serve', 'promote', 'deploy'],
    load: async () => (await import('./lookup.js')).register,
  },
  { commands: ['ci-config'], load: async () => (await import('./ci-config.js')).register },
  { commands: ['local'], load: async () => (await import('./local.js')).register },
];

/**
 * The modules to register for a command line whose first argument is `first`: the one module
 * registering that command, or every module (in order) when it names none of them.
 */
export function modulesFor(first: string | undefined): readonly CommandModule[] {
  const owner = commandModules.find((m) => first !== undefined && m.commands.includes(first));
  return owner ? [owner] : commandModules;
}
