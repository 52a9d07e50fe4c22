// A small push for action tests: one archive task, one build, two tests (one left out of the
// target set), written the way the decision task writes task-graph.json and label-to-taskid.json.
import { downstreamExpectation } from '../../src/contract/index.js';
import { slugid } from '../../src/taskcluster/client.js';
import type { TaskDefinition } from '../../src/taskcluster/types.js';

export const DIGEST = 'd'.repeat(64);
export const SHA256 = 'e'.repeat(64);

export interface PushFixture {
  decisionTaskId: string;
  parameters: Record<string, unknown>;
  ids: Record<string, string>;
  taskGraph: Record<string, any>;
  labelToTaskId: Record<string, string>;
  fullGraph: Record<string, any>;
}

export function makePush(
  opts: {
    created?: Date;
    level?: string;
    rootUrl?: string;
    taskQueues?: { archive: string; build: string; test: string };
    schedulerId?: string;
    decisionTaskId?: string;
    project?: string;
    /** Tree digest of the harness (default DIGEST). */
    digest?: string;
  } = {},
): PushFixture {
  const created = opts.created ?? new Date();
  const level = opts.level ?? '3';
  const rootUrl = opts.rootUrl ?? 'https://tc.example.com';
  const queues = opts.taskQueues ?? {
    archive: `mozharness-${level}/archive`,
    build: `mozharness-${level}/b-linux`,
    test: 'mozharness-t/t-linux-large',
  };
  const schedulerId = opts.schedulerId ?? `mozharness-level-${level}`;
  const decisionTaskId = opts.decisionTaskId ?? slugid();
  const revision = 'a'.repeat(40);
  const project = opts.project ?? 'mozilla-central';
  const repo = `https://hg.example.com/${project}`;
  const digest = opts.digest ?? DIGEST;
  const iso = (ms: number) => new Date(created.getTime() + ms).toISOString();
  const day = 24 * 3600e3;
  const ids = {
    archive: slugid(),
    build: slugid(),
    test1: slugid(),
  };
  const th = (symbol: string, kind: string) => ({
    symbol,
    jobKind: kind,
    tier: 1,
    machine: { platform: 'linux64' },
  });
  const base = (label: string, kind: string, queue: string): TaskDefinition => ({
    taskQueueId: queue,
    schedulerId,
    projectId: 'mozharness',
    taskGroupId: decisionTaskId,
    dependencies: [],
    requires: 'all-completed',
    routes: [`tc-treeherder.v2.${project}.${revision}.42`],
    priority: 'low',
    retries: 5,
    created: iso(0),
    deadline: iso(day),
    expires: iso(28 * day),
    scopes: [],
    payload: {},
    metadata: {
      name: label,
      description: label,
      owner: 'pusher@example.com',
      source: `${repo}/file/tip/taskcluster`,
    },
    tags: { kind, label, retrigger: 'true' },
    extra: {
      treeherder: th(
        kind === 'test' ? 'M(1)' : kind === 'build' ? 'B' : 'MH',
        kind === 'test' ? 'test' : 'build',
      ),
    },
  });
  const archive = base('mozharness-archive', 'mozharness-archive', queues.archive);
  archive.routes!.push(
    `index.mozharness.v1.${project}.revision.${revision}.mozharness`,
    `index.mozharness.v1.${project}.latest.mozharness`,
    `index.mozharness.cache.level-${level}.mozharness.hash.${digest}`,
  );
  archive.expires = iso(365 * day);
  archive.payload = {
    repository: repo,
    revision,
    subdir: 'testing/mozharness',
    treeDigest: digest,
    artifactName: 'public/build/mozharness.tar.gz',
    maxRunTime: 1800,
  };
  archive.extra!.index = { rank: 1700000000 };
  const url = (id: string) =>
    `${rootUrl}/api/queue/v1/task/${id}/artifacts/public%2Fbuild%2Fmozharness.tar.gz`;
  const build = base('build-linux64/opt', 'build', queues.build);
  build.dependencies = [ids.archive];
  build.payload = {
    image: 'mozillareleases/mozharness-archive-build:0.1.0',
    env: { MOZHARNESS_URL: url(ids.archive), MOZHARNESS_SHA256: SHA256 },
    command: ['taskcluster/scripts/run-mozharness.sh', 'scripts/fx_desktop_build.py'],
    maxRunTime: 7200,
    artifacts: {
      'public/build': {
        type: 'directory',
        path: '/builds/worker/artifacts',
        expires: iso(28 * day),
      },
    },
  };
  const test1 = base('test-linux64/opt-mochitest-plain-1', 'test', queues.test);
  test1.dependencies = [ids.archive, ids.build];
  test1.payload = {
    image: 'mozillareleases/mozharness-archive-test:0.1.0',
    env: {
      MOZHARNESS_URL: url(ids.archive),
      MOZHARNESS_SHA256: SHA256,
      GECKO_INSTALLER_URL: `${rootUrl}/api/queue/v1/task/${ids.build}/artifacts/public%2Fbuild%2Ftarget.tar.bz2`,
    },
    command: ['taskcluster/scripts/run-mozharness.sh', 'scripts/desktop_unittest.py'],
    maxRunTime: 3600,
  };
  // what the decision task records of the archive each downstream task expects
  for (const t of [build, test1]) {
    t.extra!.mozharness = downstreamExpectation(
      ids.archive,
      { sha256: SHA256, treeDigest: digest },
      false,
    );
  }
  const taskGraph: Record<string, any> = {
    [ids.archive]: {
      label: 'mozharness-archive',
      kind: 'mozharness-archive',
      dependencies: {},
      task: archive,
    },
    [ids.build]: {
      label: 'build-linux64/opt',
      kind: 'build',
      dependencies: { mozharness: ids.archive },
      task: build,
    },
    [ids.test1]: {
      label: 'test-linux64/opt-mochitest-plain-1',
      kind: 'test',
      dependencies: { mozharness: ids.archive, build: ids.build },
      task: test1,
    },
  };
  const labelToTaskId: Record<string, string> = {
    'mozharness-archive': ids.archive,
    'build-linux64/opt': ids.build,
    'test-linux64/opt-mochitest-plain-1': ids.test1,
  };
  const fullGraph: Record<string, any> = {
    'mozharness-archive': {
      label: 'mozharness-archive',
      kind: 'mozharness-archive',
      dependencies: {},
    },
    'build-linux64/opt': {
      label: 'build-linux64/opt',
      kind: 'build',
      dependencies: { mozharness: 'mozharness-archive' },
    },
    'test-linux64/opt-mochitest-plain-1': {
      label: 'test-linux64/opt-mochitest-plain-1',
      kind: 'test',
      dependencies: { mozharness: 'mozharness-archive', build: 'build-linux64/opt' },
    },
    'build-macosx64/opt': {
      label: 'build-macosx64/opt',
      kind: 'build',
      dependencies: { mozharness: 'mozharness-archive' },
    },
  };
  const parameters = {
    project,
    level,
    repository: repo,
    repository_type: 'hg',
    revision,
    base_revision: 'b'.repeat(40),
    owner: 'pusher@example.com',
    pushlog_id: '42',
    pushdate: 1700000000,
    tasks_for: 'hg-push',
    decision_task_id: decisionTaskId,
    taskcluster_root_url: rootUrl,
  };
  return { decisionTaskId, parameters, ids, taskGraph, labelToTaskId, fullGraph };
}
