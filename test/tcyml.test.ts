// .taskcluster.yml: the file validates against the v1 schema; each producer's rendering yields
// exactly one decision (or action) task that follows the conventions and validates against the
// upstream create-task, docker-worker and Treeherder schemas; the env it sets round-trips into
// the decision parameters; the in-template pushdate arithmetic matches the generator's.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import jsone from 'json-e';
import * as yaml from 'js-yaml';
import { Ajv } from 'ajv';
import { satisfiesExpression } from 'taskcluster-lib-scopes';
import { actionHookDefinition, actionRoles } from '../src/actions/hooks.js';
import {
  ACTIONS,
  hookPayloadTemplate,
  renderActionsJson,
  tcymlHash,
} from '../src/actions/registry.js';
import { main } from '../src/cli/main.js';
import {
  makeParameters,
  mergeFlagsWithEnv,
  pushFacts,
  parametersFromFlags,
  type Parameters,
  type TasksFor,
} from '../src/decision/parameters.js';
import { runDecision } from '../src/decision/decision.js';
import type { HarnessDigest } from '../src/decision/digest.js';
import {
  cacheNamespace,
  pushIndexNamespaces,
  readableCacheNamespaces,
} from '../src/contract/index.js';
import { deterministicSlugid } from '../src/decision/taskids.js';
import {
  producerContext,
  pullRequestTasksFor,
  renderDecisionTask,
  renderTaskclusterYml,
  type PullRequestPolicy,
  type PushParameters,
} from '../src/decision/tcyml.js';
import { assertUpstream } from './helpers/upstream.js';

const TCYML = fs.readFileSync('.taskcluster.yml', 'utf8');
const NOW = '2026-11-28T01:00:00.000Z';

const HG: PushParameters = {
  project: 'mozilla-central',
  level: '3',
  head_repository: 'https://hg.mozilla.org/mozilla-central',
  repository_type: 'hg',
  head_rev: '0123456789abcdef0123456789abcdef01234567',
  base_rev: 'fedcba9876543210fedcba9876543210fedcba98',
  owner: 'ffxbld@mozilla.com',
  pushlog_id: '40123',
  pushdate: 1764290000,
  decision_task_id: deterministicSlugid('tcyml decision'),
  taskcluster_root_url: 'https://firefox-ci-tc.services.mozilla.com',
};
const GH: PushParameters = {
  ...HG,
  project: 'mozharness-archive',
  head_repository: 'https://github.com/mozilla-releng/mozharness-archive',
  repository_type: 'git',
  pushlog_id: '0',
  owner: 'dev@example.com',
};
/** mozilla-firefox/firefox as build-decision's git-push and taskcluster-github see it. */
const FIREFOX: PushParameters = {
  ...GH,
  project: 'firefox',
  head_repository: 'https://github.com/mozilla-firefox/firefox',
  owner: 'sheriff@mozilla.com',
};
const NOW_SECONDS = Math.floor(Date.parse(NOW) / 1000);

/**
 * An action hook fired as Treeherder fires it: the hookPayload rendered with the action's input,
 * checked against the hook's trigger schema as the hooks service checks it, then the hook's task
 * template rendered with that payload (the task's own id from `seed`).
 */
function fireActionHook(
  hook: ReturnType<typeof actionHookDefinition>,
  hookPayload: object,
  fired: { taskGroupId: string; clientId: string; seed: string },
) {
  const payload = jsone(hookPayload, {
    taskGroupId: fired.taskGroupId,
    taskId: null,
    input: ACTION.input,
  });
  const ajv = new Ajv({ strict: false });
  assert.ok(ajv.validate(hook.definition.triggerSchema, payload), ajv.errorsText());
  const taskId = deterministicSlugid(fired.seed);
  const task = jsone(hook.definition.task, {
    payload,
    firedBy: 'triggerHook',
    taskId,
    now: NOW,
    clientId: fired.clientId,
  }) as Record<string, any>;
  return { task, taskId };
}
const DIGEST: HarnessDigest = {
  treeDigest: 'a'.repeat(64),
  sha256: 'b'.repeat(64),
  size: 1234,
  files: 10,
  revision: HG.head_rev,
  subdir: 'testing/mozharness',
  formatVersion: 1,
};
const ACTION = {
  name: 'retrigger-multiple',
  title: 'Retrigger',
  description: 'Create a clone of the task.',
  taskGroupId: HG.decision_task_id,
  symbol: 'rt',
  cb_name: 'retrigger_multiple_action',
  action_perm: 'generic',
  input: { requests: [{ tasks: ['build-linux64/opt'], times: 2 }] },
  clientId: 'mozilla-auth0/ad|Mozilla-LDAP|sheriff',
};

function conforms(task: Record<string, any>, what: string): void {
  const { taskId: _taskId, ...def } = task;
  assertUpstream('/schemas/queue/v1/create-task-request.json', def, what);
  assertUpstream('/schemas/docker-worker/v1/payload.json', def.payload, `${what} payload`);
  assertUpstream(
    'treeherder/task-treeherder-config.json',
    def.extra.treeherder,
    `${what} treeherder`,
  );
  assert.equal(def.payload.features.chainOfTrust, true, `${what}: features.chainOfTrust`);
  assert.equal(def.payload.features.taskclusterProxy, true, `${what}: features.taskclusterProxy`);
  assert.match(
    def.metadata.name,
    /Decision Task$|^Action: /,
    `${what}: Treeherder's decision name`,
  );
  assert.equal(
    def.routes.filter((r: string) => r.startsWith('tc-treeherder.')).length,
    1,
    `${what}: exactly one tc-treeherder route`,
  );
}

/** Every index route and index scope of a decision task, without the `index.` prefix. */
function indexNamespaces(t: Record<string, any>): string[] {
  return [
    ...t.routes.filter((r: string) => r.startsWith('index.')).map((r: string) => r.slice(6)),
    ...t.scopes
      .filter((s: string) => s.startsWith('index:insert-task:'))
      .map((s: string) => s.slice('index:insert-task:'.length)),
  ];
}

/** The parameters the rendered decision task will run with (its env, as the CLI reads it). */
function paramsOf(t: Record<string, any>, rootUrl = HG.taskcluster_root_url): Parameters {
  return parametersFromFlags(mergeFlagsWithEnv({}, t.payload.env), { rootUrl });
}

const POLICY = (yaml.load(TCYML) as { policy?: { pullRequests?: PullRequestPolicy } }).policy
  ?.pullRequests;

/** The rendered decision task, loosely typed: the tests read any field of its payload. */
function render(tasksFor: TasksFor, p: PushParameters = HG, o: Record<string, unknown> = {}): any {
  return renderDecisionTask(TCYML, tasksFor, p, { now: NOW, action: ACTION, ...o });
}

describe('.taskcluster.yml', () => {
  it('validates against the taskcluster-github v1 schema, tasks an array before rendering', () => {
    const doc = yaml.load(TCYML) as Record<string, unknown>;
    assertUpstream('/schemas/github/v1/taskcluster-github-config.v1.json', doc, '.taskcluster.yml');
    assert.ok(Array.isArray(doc.tasks) && doc.tasks.length === 1);
  });

  for (const tf of [
    'hg-push',
    'git-push',
    'github-push',
    'github-pull-request',
    'cron',
    'action',
  ] as TasksFor[]) {
    it(`${tf}: renders exactly one task that validates upstream`, () => {
      const git = ['git-push', 'github-push', 'github-pull-request'].includes(tf);
      const tasks = renderTaskclusterYml(
        TCYML,
        producerContext(tf, git ? FIREFOX : HG, { now: NOW, action: ACTION }),
      );
      assert.equal(tasks.length, 1);
      conforms(tasks[0]!, tf);
      assert.equal(tasks[0]!.created, NOW);
      assert.equal(tasks[0]!.deadline, '2026-11-29T01:00:00.000Z');
    });
  }

  it('producers that are not handled (releases, comments) render no task', () => {
    for (const tasks_for of ['github-release', 'github-issue-comment']) {
      const tasks = renderTaskclusterYml(TCYML, {
        tasks_for,
        event: { action: 'published', release: { tag_name: 'v1' } },
        as_slugid: () => deterministicSlugid('x'),
        taskcluster_root_url: HG.taskcluster_root_url,
      });
      assert.deepEqual(tasks, [], tasks_for);
    }
  });

  describe('git-push (build-decision)', () => {
    it('the context is exactly the one git_push.py builds', () => {
      const ctx = producerContext('git-push', FIREFOX, { now: NOW });
      assert.deepEqual(Object.keys(ctx).sort(), [
        'as_slugid',
        'event',
        'now',
        'ownTaskId',
        'taskcluster_root_url',
        'tasks_for',
      ]);
      const event = ctx.event as Record<string, any>;
      assert.deepEqual(Object.keys(event).sort(), [
        'after',
        'base_ref',
        'before',
        'pusher',
        'ref',
        'repository',
      ]);
      assert.deepEqual(event.pusher, { email: FIREFOX.owner });
      assert.deepEqual(event.repository, {
        name: 'firefox',
        full_name: 'mozilla-firefox/firefox',
        html_url: 'https://github.com/mozilla-firefox/firefox',
        clone_url: 'https://github.com/mozilla-firefox/firefox.git',
      });
    });

    it('a push to main: level 3 from `projects`, push date from the creation', () => {
      const t = render('git-push', FIREFOX);
      conforms(t, 'git-push main');
      assert.equal(
        t.taskId,
        FIREFOX.decision_task_id,
        'taskId is ownTaskId (build-decision pops it)',
      );
      assert.equal(t.taskGroupId, FIREFOX.decision_task_id);
      assert.equal(t.schedulerId, 'mozharness-level-3');
      assert.equal(t.taskQueueId, 'mozharness-3/decision');
      assert.equal(
        t.metadata.source,
        `${FIREFOX.head_repository}/raw/${FIREFOX.head_rev}/.taskcluster.yml`,
      );
      const p = paramsOf(t);
      assert.equal(p.tasks_for, 'git-push');
      assert.equal(p.level, '3');
      assert.equal(p.project, 'firefox');
      assert.equal(p.repository_type, 'git');
      assert.equal(p.pushlog_id, '0');
      assert.equal(p.pushdate, NOW_SECONDS, "the push date is the decision task's created");
      assert.equal(Date.parse(t.created), Date.parse(NOW));
      assert.deepEqual(t.routes, [
        `tc-treeherder.v2.firefox.${FIREFOX.head_rev}.0`,
        'index.mozharness.v2.firefox.latest.taskgraph.decision',
        `index.mozharness.v2.firefox.revision.${FIREFOX.head_rev}.taskgraph.decision`,
      ]);
      assert.deepEqual(t.scopes, [
        'assume:repo:github.com/mozilla-firefox/firefox:branch:main',
        'in-tree:hook-action:project-mozharness/in-tree-action-3-*',
        ...pushIndexNamespaces('mozharness', pushFacts(p)).map((ns) => `index:insert-task:${ns}`),
      ]);
      assert.match(t.payload.command[2], /git -C "\$src" fetch --quiet --depth=1/);
    });

    it('a push to a release branch takes its level and project from `projects`', () => {
      for (const [ref, project] of [
        ['refs/heads/release', 'firefox-release'],
        ['refs/heads/beta', 'firefox-beta'],
        ['refs/heads/esr140', 'firefox-esr'],
      ]) {
        const t = render('git-push', FIREFOX, { githubRef: ref });
        conforms(t, `git-push ${ref}`);
        const p = paramsOf(t);
        assert.equal(p.level, '3', ref);
        assert.equal(p.project, project, ref);
        assert.equal(t.schedulerId, 'mozharness-level-3');
        assert.equal(
          t.scopes[0],
          `assume:repo:github.com/mozilla-firefox/firefox:branch:${ref.slice(11)}`,
        );
        for (const ns of indexNamespaces(t)) assert.ok(ns.includes(`.${project}.`), ns);
      }
    });

    it('an unlisted branch, a fork or a tag runs at level 1 as <name>-try', () => {
      for (const [p0, ref] of [
        [FIREFOX, 'refs/heads/some-feature'],
        [{ ...FIREFOX, head_repository: 'https://github.com/someone/firefox' }, 'refs/heads/main'],
        [FIREFOX, 'refs/tags/FIREFOX_150_0_RELEASE'],
        [FIREFOX, 'refs/heads/mainline'], // 'main' is an exact name, not a prefix
      ] as Array<[PushParameters, string]>) {
        const t = render('git-push', p0, { githubRef: ref });
        conforms(t, `git-push ${ref}`);
        assert.equal(t.schedulerId, 'mozharness-level-1', `${p0.head_repository} ${ref}`);
        assert.equal(paramsOf(t).project, 'firefox-try');
        assert.ok(t.scopes.includes('in-tree:hook-action:project-mozharness/in-tree-action-1-*'));
        for (const ns of indexNamespaces(t)) assert.ok(ns.includes('.firefox-try.'), ns);
      }
    });
  });

  describe('github-pull-request (taskcluster-github)', () => {
    const PR = {
      number: 42,
      headBranch: 'fix-harness',
      baseBranch: 'main',
      login: 'contributor',
    };

    for (const action of ['opened', 'synchronize', 'reopened']) {
      it(`${action}: one level-1 decision task, whatever the target branch`, () => {
        for (const baseBranch of ['main', 'release']) {
          const t = render('github-pull-request', FIREFOX, {
            pullRequest: { ...PR, action, baseBranch },
          });
          conforms(t, `pull request ${action}`);
          assert.equal(t.taskId, FIREFOX.decision_task_id, 'as_slugid("decision")');
          assert.equal(t.schedulerId, 'mozharness-level-1');
          assert.equal(t.taskQueueId, 'mozharness-1/decision');
          assert.deepEqual(t.scopes, [
            'assume:repo:github.com/mozilla-firefox/firefox:pull-request',
            'in-tree:hook-action:project-mozharness/in-tree-pr-action-1-*',
            ...pushIndexNamespaces('mozharness', pushFacts(paramsOf(t))).map(
              (ns) => `index:insert-task:${ns}`,
            ),
          ]);
          const p = paramsOf(t);
          assert.equal(p.level, '1');
          assert.equal(p.project, 'firefox-pr');
          assert.equal(p.tasks_for, 'github-pull-request');
          assert.equal(p.head_rev, FIREFOX.head_rev, 'the head sha');
          assert.equal(p.owner, 'contributor@users.noreply.github.com');
          assert.equal(p.pushdate, NOW_SECONDS);
          assert.equal(
            p.head_repository,
            FIREFOX.head_repository,
            'fetched from the base repository',
          );
          for (const ns of indexNamespaces(t)) assert.ok(ns.includes('.firefox-pr.'), ns);
        }
      });
    }

    it('actions: the decision task offers the pull-request hooks, whose tasks run as the target repository pr-action role at level 1', () => {
      const decision = render('github-pull-request', FIREFOX, {
        pullRequest: { ...PR, action: 'opened' },
      });
      const params = paramsOf(decision) as unknown as Record<string, unknown>;
      const hash = tcymlHash(TCYML);
      const doc = renderActionsJson(params, {
        decisionTaskId: decision.taskId!,
        tcymlHash: hash,
        trustDomain: 'mozharness',
      });
      const entry = doc.actions.find((a) => a.name === 'retrigger-multiple')!;
      assert.equal(entry.hookId, `in-tree-pr-action-1-generic/${hash}`);
      const needed = `in-tree:hook-action:${String(entry.hookGroupId)}/${String(entry.hookId)}`;
      assert.ok(satisfiesExpression(decision.scopes, needed), `${needed} in the decision scopes`);

      // the hook ci-admin makes for it (level 1, pull requests), fired as Treeherder fires it
      const hook = actionHookDefinition({
        tcyml: TCYML,
        trustDomain: 'mozharness',
        level: '1',
        pullRequest: true,
      });
      assert.equal(hook.hookId, entry.hookId);
      const { task } = fireActionHook(hook, entry.hookPayload as object, {
        taskGroupId: decision.taskId!,
        clientId: 'github/contributor',
        seed: 'pr action task',
      });
      conforms(task, 'pull-request action task');
      const repoScope = 'assume:repo:github.com/mozilla-firefox/firefox:pr-action:generic';
      assert.deepEqual(task.scopes, [repoScope]);
      assert.equal(task.schedulerId, 'mozharness-level-1');
      assert.equal(task.taskQueueId, 'mozharness-1/decision');
      assert.equal(task.taskGroupId, decision.taskId);
      assert.equal(task.extra.tasks_for, 'pr-action');
      assert.equal(task.payload.env.ACTION_CALLBACK, 'retrigger-multiple');

      // the roles behind it: the hook may assume the pr-action role, which holds the task's
      // routes (the `-pr` project's) and no level above 1
      const roles = actionRoles({
        trustDomain: 'mozharness',
        level: '1',
        repositories: [],
        pullRequestRepositories: [FIREFOX.head_repository],
        taskQueueIds: ['mozharness-1/decision'],
        projectId: 'none',
        indexPrefix: 'mozharness',
      });
      const hookRole = roles.find(
        (r) => r.roleId === `hook-id:${hook.hookGroupId}/in-tree-pr-action-1-generic/*`,
      )!;
      assert.ok(satisfiesExpression(hookRole.scopes, repoScope));
      const prRole = roles.find((r) => `assume:${r.roleId}` === repoScope)!;
      for (const route of task.routes as string[]) {
        assert.ok(satisfiesExpression(prRole.scopes, `queue:route:${route}`), route);
        assert.ok(route.includes('.firefox-pr.'), route);
      }
      assert.ok(!prRole.scopes.some((sc) => /level-[23]|-[23]\//.test(sc)), prRole.scopes.join());
      assert.ok(
        satisfiesExpression(
          prRole.scopes,
          `in-tree:hook-action:${hook.hookGroupId}/${hook.hookId}`,
        ),
      );
      // an action on a push of the same repository keeps the push hook
      const push = renderActionsJson(
        { ...params, tasks_for: 'github-push', level: '3' },
        { decisionTaskId: decision.taskId!, tcymlHash: hash, trustDomain: 'mozharness' },
      );
      assert.equal(push.actions[0]!.hookId, `in-tree-action-3-generic/${hash}`);
    });

    it('closed, edited, labeled and other actions render nothing', () => {
      for (const action of [
        'closed',
        'edited',
        'labeled',
        'unlabeled',
        'assigned',
        'review_requested',
      ]) {
        const ctx = producerContext('github-pull-request', FIREFOX, {
          now: NOW,
          pullRequest: { ...PR, action },
        });
        assert.deepEqual(renderTaskclusterYml(TCYML, ctx), [], action);
      }
    });

    it('policy.pullRequests is honoured as taskcluster-github applies it', () => {
      assert.equal(POLICY, 'collaborators');
      const run = (policy: PullRequestPolicy | undefined, collaborator: boolean) => {
        const tasksFor = pullRequestTasksFor(policy, collaborator);
        if (!tasksFor) return [];
        const ctx = producerContext('github-pull-request', FIREFOX, {
          now: NOW,
          pullRequest: { ...PR, action: 'opened' },
        });
        return renderTaskclusterYml(TCYML, { ...ctx, tasks_for: tasksFor });
      };
      // this file's policy: collaborators' pull requests build, others are not rendered at all
      assert.equal(run(POLICY, true).length, 1);
      assert.equal(run(POLICY, false).length, 0);
      assert.equal(run(undefined, false).length, 0, 'no policy means collaborators');
      assert.equal(run('collaborators_quiet', false).length, 0);
      // public: everyone's pull request builds, still at level 1
      const [pub] = run('public', false);
      assert.equal(pub!.schedulerId, 'mozharness-level-1');
      // public_restricted: non-collaborators get github-pull-request-untrusted, which this file
      // does not build
      assert.equal(run('public_restricted', false).length, 0);
      assert.equal(run('public_restricted', true).length, 1);
    });

    it('its archive reads level 1 and above and writes only the level-1 cache; main never reads it', async () => {
      const pr = paramsOf(
        render('github-pull-request', FIREFOX, { pullRequest: { ...PR, action: 'opened' } }),
      );
      const main = paramsOf(render('git-push', FIREFOX));
      const decide = (params: Parameters) =>
        runDecision({ params, root: 'taskcluster', digest: DIGEST, created: new Date(NOW) });
      const [prRun, mainRun] = await Promise.all([decide(pr), decide(main)]);
      const archiveOf = (r: Awaited<ReturnType<typeof decide>>) =>
        Object.values(r.resolved.tasks).find((t) => t.label === 'mozharness-archive')!.task;
      const prCaches = archiveOf(prRun).routes!.filter((r) => r.includes('.cache.'));
      assert.deepEqual(prCaches, [`index.${cacheNamespace('mozharness', 1, DIGEST.treeDigest)}`]);
      assert.deepEqual(
        prRun.optimized.records.find((r) => r.label === 'mozharness-archive')!.namespacesTried,
        readableCacheNamespaces('mozharness', '1', DIGEST.treeDigest),
      );
      assert.deepEqual(
        readableCacheNamespaces('mozharness', '1', DIGEST.treeDigest),
        [3, 2, 1].map((l) => cacheNamespace('mozharness', l, DIGEST.treeDigest)),
      );
      const mainReads = mainRun.optimized.records.find(
        (r) => r.label === 'mozharness-archive',
      )!.namespacesTried;
      assert.deepEqual(mainReads, [cacheNamespace('mozharness', 3, DIGEST.treeDigest)]);
      // no namespace the pull request's tasks write is one that a push to main reads or writes
      const prWrites = Object.values(prRun.resolved.tasks).flatMap((t) =>
        (t.task.routes ?? []).filter((r) => r.startsWith('index.')).map((r) => r.slice(6)),
      );
      const mainTouches = new Set([
        ...mainReads,
        ...Object.values(mainRun.resolved.tasks).flatMap((t) =>
          (t.task.routes ?? []).filter((r) => r.startsWith('index.')).map((r) => r.slice(6)),
        ),
      ]);
      assert.ok(prWrites.length > 0);
      for (const ns of prWrites) assert.ok(!mainTouches.has(ns), ns);
      for (const t of Object.values(prRun.resolved.tasks)) {
        assert.match(t.task.taskQueueId!, /^mozharness-(1|t)\/|^releng-hardware\//, t.label);
        assert.equal(t.task.schedulerId, 'mozharness-level-1');
      }
    });
  });

  it('hg-push: the decision task conventions', () => {
    const t = render('hg-push');
    assert.equal(t.taskId, HG.decision_task_id);
    assert.equal(t.taskGroupId, HG.decision_task_id);
    assert.equal(t.schedulerId, 'mozharness-level-3');
    assert.match(t.metadata.name, /Decision Task$/);
    assert.equal(
      t.metadata.source,
      `${HG.head_repository}/raw-file/${HG.head_rev}/.taskcluster.yml`,
    );
    assert.deepEqual(t.extra.treeherder, { machine: { platform: 'gecko-decision' }, symbol: 'D' });
    assert.equal(t.tags.kind, 'decision-task');
    assert.deepEqual(t.routes, [
      `tc-treeherder.v2.mozilla-central.${HG.head_rev}.40123`,
      'index.mozharness.v2.mozilla-central.latest.taskgraph.decision',
      `index.mozharness.v2.mozilla-central.revision.${HG.head_rev}.taskgraph.decision`,
      'index.mozharness.v2.mozilla-central.pushlog-id.40123.decision',
    ]);
    // scopes by level, and exactly the index entries a reusing decision task inserts
    assert.deepEqual(t.scopes, [
      'assume:repo:hg.mozilla.org/mozilla-central:branch:default',
      'in-tree:hook-action:project-mozharness/in-tree-action-3-*',
      ...pushIndexNamespaces('mozharness', pushFacts(makeParameters(HG))).map(
        (ns) => `index:insert-task:${ns}`,
      ),
    ]);
    assert.equal(t.payload.command[0], '/bin/bash');
    assert.match(t.payload.command[2], /hg clone --noupdate "\$MOZHARNESS_ARCHIVE_REPOSITORY"/);
    assert.match(t.payload.command[2], /exec mozharness-archive decision --checkout "\$src"/);
    assert.equal(t.payload.features.taskclusterProxy, true);
    assert.equal(t.payload.artifacts.public.type, 'directory');
  });

  for (const [tf, p] of [
    ['hg-push', HG],
    ['git-push', FIREFOX],
    ['github-push', GH],
    ['cron', HG],
  ] as Array<[TasksFor, PushParameters]>) {
    it(`${tf}: the payload env round-trips into the decision parameters`, () => {
      const t = render(tf, p);
      const got = paramsOf(t, p.taskcluster_root_url);
      const want: Parameters = makeParameters({
        ...p,
        tasks_for: tf,
        owner: tf === 'cron' ? 'cron@noreply.mozilla.org' : p.owner,
        ...(tf === 'git-push' ? { pushdate: NOW_SECONDS } : {}),
      });
      assert.deepEqual(got, want);
      assert.equal(t.payload.env.MOZHARNESS_ARCHIVE_TASK_ID, t.taskId);
    });
  }

  it('github-push: as_slugid("decision"), level 3 only on the canonical main branch', () => {
    const t = render('github-push', GH);
    assert.equal(t.taskId, GH.decision_task_id, 'as_slugid("decision")');
    assert.equal(t.schedulerId, 'mozharness-level-3');
    assert.equal(t.metadata.source, `${GH.head_repository}/raw/${GH.head_rev}/.taskcluster.yml`);
    assert.ok(!t.routes.some((r: string) => r.includes('pushlog-id')), 'no pushlog on GitHub');
    assert.ok(
      t.scopes.includes('assume:repo:github.com/mozilla-releng/mozharness-archive:branch:main'),
    );
    const branch = render('github-push', GH, { githubRef: 'refs/heads/feature-x' });
    assert.equal(branch.schedulerId, 'mozharness-level-1');
    assert.equal(branch.payload.env.MOZHARNESS_ARCHIVE_LEVEL, '1');
    assert.ok(
      branch.scopes.includes(
        'assume:repo:github.com/mozilla-releng/mozharness-archive:branch:feature-x',
      ),
    );
    assert.ok(branch.scopes.includes('in-tree:hook-action:project-mozharness/in-tree-action-1-*'));
    const fork = render('github-push', {
      ...GH,
      head_repository: 'https://github.com/someone/mozharness-archive',
    });
    assert.equal(fork.schedulerId, 'mozharness-level-1');
    // the producer context has no ownTaskId, only as_slugid
    const ctx = producerContext('github-push', GH);
    assert.ok(!('ownTaskId' in ctx) && typeof ctx.as_slugid === 'function');
    assert.ok(!('as_slugid' in producerContext('hg-push', HG)));
  });

  it('cron: a cron decision task with the cron job symbol', () => {
    const t = render('cron', HG, {
      cron: { task_id: deterministicSlugid('cron'), job_name: 'nightly', job_symbol: 'Nd' },
    });
    assert.match(t.metadata.name, /^Cron nightly Decision Task$/);
    assert.equal(t.tags.kind, 'cron-task');
    assert.deepEqual(t.extra.treeherder, {
      machine: { platform: 'gecko-decision' },
      groupSymbol: 'cron',
      symbol: 'Nd',
    });
    assert.equal(t.scopes[0], 'assume:repo:hg.mozilla.org/mozilla-central:cron:nightly');
    assert.equal(t.payload.env.MOZHARNESS_ARCHIVE_OWNER, 'cron@noreply.mozilla.org');
  });

  it('action: the action task runs action-callback in the decision task group', () => {
    const t = render('action');
    assert.ok(!('taskId' in t), 'the hooks service assigns the task id');
    assert.equal(t.taskGroupId, ACTION.taskGroupId);
    assert.equal(t.tags.kind, 'action-callback');
    assert.equal(t.metadata.name, 'Action: Retrigger');
    assert.match(
      t.metadata.description,
      /Action triggered by clientID `mozilla-auth0\/ad\|Mozilla-LDAP\|sheriff`/,
    );
    assert.deepEqual(t.extra.treeherder, {
      machine: { platform: 'gecko-decision' },
      groupName: 'action-callback',
      groupSymbol: 'A',
      symbol: 'rt',
    });
    assert.deepEqual(t.scopes, ['assume:repo:hg.mozilla.org/mozilla-central:action:generic']);
    assert.equal(t.extra.parent, ACTION.taskGroupId);
    assert.deepEqual(t.extra.action.context.input, ACTION.input);
    assert.equal(t.payload.env.ACTION_TASK_GROUP_ID, ACTION.taskGroupId);
    assert.equal(t.payload.env.ACTION_TASK_ID, 'null');
    assert.deepEqual(JSON.parse(t.payload.env.ACTION_INPUT), ACTION.input);
    assert.equal(t.payload.env.ACTION_CALLBACK, 'retrigger_multiple_action');
    assert.match(t.payload.command[2], /exec mozharness-archive action-callback/);
    assert.ok(!/mozharness-archive decision/.test(t.payload.command[2]));
    assert.ok(
      t.routes.includes(
        `index.mozharness.v2.mozilla-central.revision.${HG.head_rev}.taskgraph.actions.${HG.decision_task_id}`,
      ),
    );
    // a per-task action: ACTION_TASK_ID is the JSON of the target task id
    const target = deterministicSlugid('target');
    const one = render('action', HG, { action: { ...ACTION, taskId: target } });
    assert.equal(JSON.parse(one.payload.env.ACTION_TASK_ID), target);
    conforms(one, 'per-task action');
  });

  it('action: renders when the hook gives no clientId and no pushdate', () => {
    const ctx = producerContext('action', HG, { now: NOW, action: ACTION });
    delete ctx.clientId;
    (ctx.push as Record<string, unknown>).pushdate = undefined;
    delete (ctx.push as Record<string, unknown>).pushdate;
    ctx.parameters = null;
    const [t] = renderTaskclusterYml(TCYML, ctx) as any[];
    assert.match(t!.metadata.description, /clientID `unknown`/);
    conforms(t!, 'action without clientId');
  });

  it('action: renders through the in-tree action hook (actions.json hookPayload → hook template)', () => {
    const hook = actionHookDefinition({ tcyml: TCYML, trustDomain: 'mozharness', level: '3' });
    const action = ACTIONS.find((a) => a.name === 'retrigger-multiple')!;
    const params = HG;
    const template = hookPayloadTemplate(
      action,
      {
        project: HG.project,
        level: HG.level,
        repository: HG.head_repository,
        revision: HG.head_rev,
        baseRevision: HG.base_rev,
        owner: HG.owner,
        pushlogId: HG.pushlog_id,
      },
      HG.decision_task_id,
      params,
    );
    const { task, taskId: ownTaskId } = fireActionHook(hook, template, {
      taskGroupId: HG.decision_task_id,
      clientId: 'sheriff',
      seed: 'action task',
    });
    conforms(task, 'hooked action task');
    assert.equal(task.taskGroupId, HG.decision_task_id);
    assert.equal(task.tags.kind, 'action-callback');
    assert.equal(task.extra.treeherder.groupSymbol, 'A');
    assert.equal(task.payload.env.ACTION_CALLBACK, action.cbName);
    assert.deepEqual(JSON.parse(task.payload.env.ACTION_INPUT), ACTION.input);
    assert.equal(task.payload.env.MOZHARNESS_ARCHIVE_PUSHDATE, String(HG.pushdate));
    assert.ok(task.routes.some((r: string) => r.endsWith(`.actions.${ownTaskId}`)));
  });

  it('the json-e pushdate arithmetic agrees with the generator for many dates', () => {
    const doc = yaml.load(TCYML) as { tasks: unknown[] };
    const dates = [
      0, 951782400, 951868799, 1709164800, 4107542399, 1764290000, 946684799, 1234567890,
    ];
    let seed = 42;
    for (let i = 0; i < 200; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      dates.push(seed * 2);
    }
    for (const pushdate of dates) {
      const p = { ...HG, pushdate };
      const [t] = jsone({ tasks: doc.tasks }, producerContext('hg-push', p, { now: NOW }))
        .tasks as any[];
      const want = pushIndexNamespaces('mozharness', pushFacts(makeParameters(p))).find((n) =>
        n.includes('.pushdate.'),
      )!;
      assert.ok(
        t.scopes.includes(`index:insert-task:${want}`),
        `${pushdate}: ${new Date(pushdate * 1000).toISOString()} → ${t.scopes.find((s: string) => s.includes('pushdate'))}`,
      );
    }
  });

  it('render-tcyml prints the rendered task (--json)', async () => {
    const out: string[] = [];
    const w = process.stdout.write;
    process.stdout.write = ((s: string) => (
      out.push(String(s)),
      true
    )) as typeof process.stdout.write;
    let code: number;
    try {
      code = await main([
        'node',
        'mozharness-archive',
        'render-tcyml',
        '--tasks-for',
        'hg-push',
        '--json',
        '--now',
        NOW,
        '--project',
        HG.project,
        '--level',
        '3',
        '--repository',
        HG.head_repository,
        '--revision',
        HG.head_rev,
        '--base-revision',
        HG.base_rev,
        '--owner',
        HG.owner,
        '--pushlog-id',
        HG.pushlog_id,
        '--pushdate',
        String(HG.pushdate),
        '--task-id',
        HG.decision_task_id,
      ]);
    } finally {
      process.stdout.write = w;
    }
    assert.equal(code, 0);
    const doc = JSON.parse(out.join(''));
    assert.equal(doc.tasks.length, 1);
    assert.deepEqual(doc.tasks[0], render('hg-push'));
  });
});
