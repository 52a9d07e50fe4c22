// Generated from schemas/manifest.json by `npm run gen:types` (json-schema-to-typescript): do not edit;
// change the schema and regenerate. test/schemas.test.ts fails when this file is out of date.

/**
 * This interface was referenced by `Manifest`'s JSON-Schema
 * via the `definition` "channelEntry".
 */
export type ChannelEntry = Entry & {
  previous?: PreviousEntry;
  [k: string]: unknown;
};
/**
 * This interface was referenced by `Manifest`'s JSON-Schema
 * via the `definition` "previousEntry".
 */
export type PreviousEntry = Entry & {
  previous?: never;
  [k: string]: unknown;
};

/**
 * Written by `mozharness-archive promote`, followed by `mozharness-archive deploy`. One entry per channel, each pointing at a verified archive; `previous` is the entry it replaced, so a rollback is one command.
 */
export interface Manifest {
  version: 1;
  channels: {
    [k: string]: ChannelEntry;
  };
}
/**
 * This interface was referenced by `Manifest`'s JSON-Schema
 * via the `definition` "entry".
 */
export interface Entry {
  project: string;
  revision: string;
  treeDigest: string;
  url: string;
  sha256: string;
  size: number;
  taskId: string;
  promotedAt: string;
  promotedBy: string;
  [k: string]: unknown;
}
