// Generated from schemas/action-add-new-jobs.json by `npm run gen:types` (json-schema-to-typescript): do not edit;
// change the schema and regenerate. test/schemas.test.ts fails when this file is out of date.

/**
 * How many times to run each task.
 */
export type Times = number;

/**
 * Schedule the listed tasks of the push (also those its target set left out), `times` times each.
 */
export interface ActionAddNewJobs {
  /**
   * Task labels from the push's full task graph.
   *
   * @minItems 1
   * @maxItems 1000
   */
  tasks: string[];
  times?: Times;
}
