// Generated from schemas/action-retrigger.json by `npm run gen:types` (json-schema-to-typescript): do not edit;
// change the schema and regenerate. test/schemas.test.ts fails when this file is out of date.

/**
 * How many times to run the task.
 */
export type Times = number;

/**
 * Re-create one task (and, with downstream, the tasks that depend on it).
 */
export interface ActionRetrigger {
  /**
   * Also re-create the tasks that depend on this one, pointing at the new task.
   */
  downstream?: boolean;
  times?: Times;
}
