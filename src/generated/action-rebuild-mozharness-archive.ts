// Generated from schemas/action-rebuild-mozharness-archive.json by `npm run gen:types` (json-schema-to-typescript): do not edit;
// change the schema and regenerate. test/schemas.test.ts fails when this file is out of date.

/**
 * Build the harness archive again from source, even when its content digest is indexed, and index the new archive at a higher rank. Use it when an archive is suspected bad.
 */
export interface ActionRebuildMozharnessArchive {
  /**
   * Also re-run the tasks that use this archive, pointing at the rebuilt one.
   */
  downstream?: boolean;
}
