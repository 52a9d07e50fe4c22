// Generated from schemas/parameters.json by `npm run gen:types` (json-schema-to-typescript): do not edit;
// change the schema and regenerate. test/schemas.test.ts fails when this file is out of date.

/**
 * taskgraph's base parameters, with taskgraph's names and types (narrowed where the decision task needs a precise value), then the project's own keys. Other keys are allowed, as in taskgraph.
 */
export interface Parameters {
  /**
   * The repository the push is based on (the same as head_repository for a push).
   */
  base_repository: string;
  /**
   * The branch the push or pull request is based on, when the producer names one.
   */
  base_ref: string | null;
  /**
   * The revision before the push; '' when unknown (first push of a branch).
   */
  base_rev: string;
  /**
   * Unix seconds (the push date).
   */
  build_date: number;
  build_number: number;
  /**
   * Labels never optimised away.
   */
  do_not_optimize: string[];
  enable_always_target: boolean | string[];
  /**
   * label → taskId of tasks to reuse instead of scheduling.
   */
  existing_tasks: {
    [k: string]: string;
  };
  files_changed: string[];
  filters: string[];
  /**
   * The pushed ref: refs/heads/<branch> for git, the hg branch ('default') for hg.
   */
  head_ref: string;
  /**
   * The repository the revision is fetched from.
   */
  head_repository: string;
  /**
   * The pushed revision (40 hex).
   */
  head_rev: string;
  head_tag: string;
  /**
   * Trust level, a string as the hg-push producer gives it: '1' (try), '2', '3'.
   */
  level: '1' | '2' | '3';
  /**
   * YYYYMMDDhhmmss of the push date (UTC).
   */
  moz_build_date: string;
  next_version: string | null;
  optimize_strategies: string | null;
  optimize_target_tasks: boolean;
  owner: string;
  project: string;
  /**
   * Unix seconds.
   */
  pushdate: number;
  /**
   * '0' when the producer has no pushlog (git).
   */
  pushlog_id: string;
  repository_type: 'hg' | 'git';
  target_tasks_method: string;
  tasks_for: 'hg-push' | 'git-push' | 'github-push' | 'github-pull-request' | 'action' | 'cron';
  version: string | null;
  /**
   * The project's own: the decision task (the task group).
   */
  decision_task_id: string;
  /**
   * The project's own: the deployment's root URL.
   */
  taskcluster_root_url: string;
  [k: string]: unknown;
}
