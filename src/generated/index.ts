// Generated from schemas/*.json by `npm run gen:types` (json-schema-to-typescript): do not edit;
// change the schema and regenerate. test/schemas.test.ts fails when this file is out of date.

export type { ActionAddNewJobs } from './action-add-new-jobs.js';
export type { ActionRebuildMozharnessArchive } from './action-rebuild-mozharness-archive.js';
export type { ActionRetriggerMultiple } from './action-retrigger-multiple.js';
export type { ActionRetrigger } from './action-retrigger.js';
export type { ArchiveMetadata } from './archive-metadata.js';
export type { Config } from './config.js';
export type { Kind } from './kind.js';
export type { LookupConfig } from './lookup-config.js';
export type { Manifest } from './manifest.js';
export type { Parameters } from './parameters.js';
export type { WorkerConfig } from './worker-config.js';
export type { WorkerPayload } from './worker-payload.js';
