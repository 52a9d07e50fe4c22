// The producers that render .taskcluster.yml (its `tasks_for` values). No imports: the CLI reads
// this list to print its help without loading the decision stage.
export type TasksFor =
  'hg-push' | 'git-push' | 'github-push' | 'github-pull-request' | 'action' | 'cron';
export const TASKS_FOR: TasksFor[] = [
  'hg-push',
  'git-push',
  'github-push',
  'github-pull-request',
  'action',
  'cron',
];
