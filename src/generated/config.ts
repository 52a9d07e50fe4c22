// Generated from schemas/config.json by `npm run gen:types` (json-schema-to-typescript): do not edit;
// change the schema and regenerate. test/schemas.test.ts fails when this file is out of date.

/**
 * A Taskcluster relative time, e.g. '1 day', '28 days', '1 year'.
 *
 * This interface was referenced by `Config`'s JSON-Schema
 * via the `definition` "duration".
 */
export type Duration = string;

/**
 * In-tree configuration of the mozharness-archive task graph.
 */
export interface Config {
  'trust-domain': string;
  /**
   * First segments of every index namespace this graph writes.
   */
  'index-prefix': string;
  'project-id'?: string;
  'taskcluster-root-url'?: string;
  'task-priority'?: 'highest' | 'very-high' | 'high' | 'medium' | 'low' | 'very-low' | 'lowest';
  'task-deadline-after'?: Duration;
  'task-expires-after'?: Duration;
  workers: {
    aliases: {
      [k: string]: {
        /**
         * A worker implementation with a payload builder (src/decision/payloads.ts): mozharness-archive, docker-worker, generic-worker.
         */
        implementation: string;
        /**
         * <provisionerId>/<workerType>; {level} is replaced by the push's level.
         */
        'task-queue-id': string;
        image?: string;
      };
    };
  };
  treeherder?: {
    'group-names'?: {
      [k: string]: string;
    };
  };
  storage?: {
    'public-base-url'?: string;
  };
  archive: {
    'artifact-name': string;
    /**
     * The zip of the same tree that the archive task also publishes; downstream tasks fetch it (MOZHARNESS_URL, generic-worker mounts with format zip). Without it they fetch the tar.gz.
     */
    'zip-artifact-name'?: string;
    'expires-after'?: Duration;
  };
}
