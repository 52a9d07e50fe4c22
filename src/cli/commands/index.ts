// Every command module registers its commands on the program. One module per stage.
import type { Command } from 'commander';
import { register as archive } from './archive.js';
import { register as upload } from './upload.js';
import { register as local } from './local.js';
import { register as worker } from './worker.js';
import { register as cot } from './cot.js';
import { register as decision } from './decision.js';
import { register as actions } from './actions.js';
import { register as lookup } from './lookup.js';
import { register as ciConfig } from './ci-config.js';

export const commandModules: Array<(program: Command) => void> = [
  archive,
  upload,
  decision,
  worker,
  cot,
  actions,
  lookup,
  ciConfig,
  local,
];
