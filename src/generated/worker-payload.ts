// Generated from schemas/worker-payload.json by `npm run gen:types` (json-schema-to-typescript): do not edit;
// change the schema and regenerate. test/schemas.test.ts fails when this file is out of date.

/**
 * The payload of an archive task: build the deterministic archive of `subdir` of `repository` at `revision`, optionally test it, store it in S3 by sha256 and publish it as artifacts.
 */
export interface WorkerPayload {
  /**
   * hgweb or git URL of the repository; must start with one of the worker's allowed repository prefixes.
   */
  repository: string;
  /**
   * How to fetch `repository`: `hg` (hgweb) or `git`. Default: git when the URL ends in .git, hg otherwise.
   */
  repositoryType?: 'hg' | 'git';
  /**
   * The full 40-hex revision (hg node or git commit).
   */
  revision: string;
  /**
   * The subdirectory to archive, relative to the repository root, e.g. testing/mozharness.
   */
  subdir: string;
  /**
   * The tree digest the decision task computed from its checkout; a mismatch fails the task.
   */
  treeDigest?: string;
  /**
   * The sha256 of the archive (tar.gz) the decision task predicted and gave downstream tasks; a mismatch fails the task before anything is uploaded or indexed.
   */
  sha256?: string;
  /**
   * The sha256 of the zip (public/build/mozharness.zip) the decision task predicted and gave downstream tasks as MOZHARNESS_SHA256; a mismatch fails the task before anything is uploaded or indexed.
   */
  zipSha256?: string;
  /**
   * A command run inside a temporary copy of the unpacked tree before anything is uploaded.
   */
  test?: {
    /**
     * @minItems 1
     */
    command: string[];
    /**
     * Seconds the test may run (default: the task's maxRunTime).
     */
    maxRunTime?: number;
    /**
     * The only variables the test gets besides PATH, HOME, LANG and TMPDIR.
     */
    env?: {
      [k: string]: string;
    };
  };
  /**
   * Name of the archive artifact.
   */
  artifactName?: string;
  /**
   * Seconds the whole run may take before the task fails.
   */
  maxRunTime: number;
  /**
   * Extra index entries the worker inserts with the task's own credentials once the archive is stored and verified (the task needs index:insert-task:<namespace>).
   */
  index?: {
    /**
     * @minItems 1
     * @maxItems 32
     */
    namespaces: string[];
    rank?: number;
  };
}
