// Generated from schemas/kind.json by `npm run gen:types` (json-schema-to-typescript): do not edit;
// change the schema and regenerate. test/schemas.test.ts fails when this file is out of date.

/**
 * This interface was referenced by `Kind`'s JSON-Schema
 * via the `definition` "duration".
 */
export type Duration = string;
/**
 * This interface was referenced by `Kind`'s JSON-Schema
 * via the `definition` "symbol".
 */
export type Symbol = string;
/**
 * This interface was referenced by `Kind`'s JSON-Schema
 * via the `definition` "platform".
 */
export type Platform = string;

/**
 * A kind: the archive kind (one task) or a kind of downstream tasks running a mozharness script.
 */
export interface Kind {
  [k: string]: unknown;
}
/**
 * This interface was referenced by `Kind`'s JSON-Schema
 * via the `definition` "archive".
 */
export interface Archive {
  subdir: string;
  'worker-alias': string;
  description?: string;
  'max-run-time'?: number;
  'expires-after'?: Duration;
  treeherder: {
    symbol: Symbol;
    platform: Platform;
    tier?: 1 | 2 | 3;
  };
  test: {
    /**
     * @minItems 1
     */
    command: string[];
    'max-run-time'?: number;
    env?: {
      [k: string]: string;
    };
  };
}
/**
 * This interface was referenced by `Kind`'s JSON-Schema
 * via the `definition` "downstream-file".
 */
export interface DownstreamFile {
  'kind-dependencies'?: string[];
  'task-defaults'?: {
    [k: string]: unknown;
  };
  tasks: {
    [k: string]: {
      [k: string]: unknown;
    };
  };
}
/**
 * This interface was referenced by `Kind`'s JSON-Schema
 * via the `definition` "downstream-task".
 */
export interface DownstreamTask {
  description: string;
  /**
   * name → label; `mozharness` must name the archive kind's task.
   */
  dependencies: {
    mozharness: string;
    [k: string]: string;
  };
  'worker-alias': string;
  'max-run-time'?: number;
  /**
   * @minItems 1
   */
  'run-on-projects'?: string[];
  env?: {
    [k: string]: string;
  };
  treeherder: {
    symbol: Symbol;
    platform: Platform;
    kind: 'build' | 'test' | 'other';
    tier?: 1 | 2 | 3;
    collection?: string;
  };
  mozharness: {
    /**
     * Path of the script inside the harness archive, e.g. scripts/desktop_unittest.py.
     */
    script: string;
    config: string[];
    'extra-args'?: string[];
  };
}
