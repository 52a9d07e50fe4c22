// Generated from schemas/action-retrigger-multiple.json by `npm run gen:types` (json-schema-to-typescript): do not edit;
// change the schema and regenerate. test/schemas.test.ts fails when this file is out of date.

/**
 * How many times to run each task.
 */
export type Times = number;

/**
 * Treeherder's Retrigger button: re-create each listed task `times` times in the push's task group.
 */
export interface ActionRetriggerMultiple {
  /**
   * @minItems 1
   * @maxItems 100
   */
  requests: {
    /**
     * Task labels (Treeherder job type names, task.metadata.name).
     *
     * @minItems 1
     * @maxItems 1000
     */
    tasks: string[];
    times?: Times;
  }[];
}
