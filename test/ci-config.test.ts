// `mozharness-archive ci-config`: the ci-configuration files it prints parse, hold the in-tree
// config's projects, levels, queues and hooks, and name each role once. (Applying them to a
// deployment is tested in test/integration/decision.test.ts, against both backends.)
import assert from 'node:assert/strict';
import fs from 'node:fs';
import * as yaml from 'js-yaml';
import { ciConfigFiles } from '../src/actions/ci-config-files.js';
import { ciConfig, parseProjectFlag, projectsFromTcyml } from '../src/actions/ci-config.js';
import { loadGraphConfig } from '../src/decision/config.js';
import { spawnCli } from './helpers/cli.js';

const TCYML = fs.readFileSync('.taskcluster.yml', 'utf8');

describe('ci-config', function () {
  this.timeout(60_000);

  it('derives projects, roles, hooks and pools from the in-tree configuration', async () => {
    const config = await loadGraphConfig('taskcluster');
    const c = ciConfig({
      tcyml: TCYML,
      config,
      projects: [
        parseProjectFlag('mozilla-central=https://hg.mozilla.org/mozilla-central@3'),
        parseProjectFlag('try=https://hg.mozilla.org/try@1'),
      ],
    });
    assert.deepEqual(c.levels, ['1', '3']);
    assert.ok(projectsFromTcyml(TCYML).some((p) => p.branch === 'main' && p.level === '3'));
    const ids = c.roles.map((r) => r.roleId);
    assert.equal(new Set(ids).size, ids.length, 'each role once');
    for (const id of [
      'repo:hg.mozilla.org/mozilla-central:branch:default',
      'repo:hg.mozilla.org/mozilla-central:action:generic',
      'repo:hg.mozilla.org/mozilla-central:cron:*',
      'repo:github.com/mozilla-firefox/firefox:branch:main',
      'hook-id:project-mozharness/in-tree-action-1-generic/*',
    ]) {
      assert.ok(ids.includes(id), id);
    }
    const tryPush = c.roles.find((r) => r.roleId === 'repo:hg.mozilla.org/try:branch:default')!;
    assert.ok(tryPush.scopes.includes('queue:create-task:highest:mozharness-1/archive'));
    assert.ok(!tryPush.scopes.some((s) => s.includes('mozharness-3/')), 'no level-3 queue');
    assert.ok(!tryPush.scopes.some((s) => s.includes('level-3')), 'no level-3 cache or scheduler');
    const pools = c.workerPools.map((p) => p.workerPoolId);
    for (const id of ['mozharness-1/decision', 'mozharness-3/decision', 'mozharness-3/archive']) {
      assert.ok(pools.includes(id), id);
    }

    const files = ciConfigFiles(c);
    const projects = yaml.load(files['projects.yml']!) as Record<string, any>;
    assert.equal(projects['mozilla-central'].access, 'scm_level_3');
    assert.equal(projects.try.trust_domain, 'mozharness');
    assert.deepEqual(projects.firefox.branches[0], { name: 'main', level: 3 });
    const actions = yaml.load(files['actions.yml']!) as any[];
    assert.deepEqual(actions, [
      { trust_domain: 'mozharness', levels: [1, 3], action_perms: ['generic'] },
    ]);
    const grants = yaml.load(files['grants.yml']!) as any[];
    assert.ok(grants.every((g) => Array.isArray(g.grant) && Array.isArray(g.to)));
    const wp = yaml.load(files['worker-pools.yml']!) as { pools: any[] };
    const archive = wp.pools.find((p) => p.pool_id === 'mozharness-{level}/archive');
    assert.deepEqual(archive.variants, [{ level: 1 }, { level: 3 }]);
    assert.equal(archive.provider_id, 'static');
    const hooks = yaml.load(files['hooks.yml']!) as { note: string; hooks: any[] };
    assert.match(hooks.note, /ci-admin generates/);
    assert.deepEqual(
      hooks.hooks.map((h) => h.hookId.replace(/\/.*/, '')),
      ['in-tree-action-1-generic', 'in-tree-pr-action-1-generic', 'in-tree-action-3-generic'],
    );
  });

  it('pull requests: a level-1 pull-request hook, and pull-request and pr-action roles of each git repository', async () => {
    const config = await loadGraphConfig('taskcluster');
    const c = ciConfig({ tcyml: TCYML, config });
    // the git repositories .taskcluster.yml lists run at level 3, their pull requests at level 1
    assert.deepEqual(c.levels, ['1', '3']);
    const role = (id: string) => c.roles.find((r) => r.roleId === id);
    const firefox = 'repo:github.com/mozilla-firefox/firefox';
    const hookRole = role('hook-id:project-mozharness/in-tree-pr-action-1-generic/*')!;
    assert.ok(hookRole.scopes.includes(`assume:${firefox}:pr-action:generic`));
    assert.ok(!role('hook-id:project-mozharness/in-tree-action-1-generic/*'), 'no level-1 push');
    for (const id of [`${firefox}:pull-request`, `${firefox}:pr-action:generic`]) {
      const r = role(id)!;
      assert.ok(r, id);
      assert.ok(r.scopes.includes('queue:create-task:highest:mozharness-1/decision'), id);
      assert.ok(r.scopes.includes('queue:route:tc-treeherder.v2.firefox-pr.*'), id);
      assert.ok(!r.scopes.some((s) => /level-3|-3\//.test(s)), `${id}: nothing of level 3`);
      assert.ok(
        r.scopes.includes('in-tree:hook-action:project-mozharness/in-tree-pr-action-1-*'),
        id,
      );
    }
    const pr = c.hooks.find((h) => h.hookId.startsWith('in-tree-pr-action-1-generic/'))!;
    assert.equal(
      (pr.definition.task as { $let: { tasks_for: string } }).$let.tasks_for,
      'pr-action',
    );
    const files = ciConfigFiles(c);
    const projects = yaml.load(files['projects.yml']!) as Record<string, any>;
    assert.equal(projects.firefox.features['pr-actions'], true);
    assert.deepEqual(projects.firefox.features['github-pull-request'], { policy: 'collaborators' });
    const grants = yaml.load(files['grants.yml']!) as any[];
    const jobs = grants.flatMap((g) => g.to.flatMap((t: any) => t.project?.job ?? []));
    assert.ok(jobs.includes('pull-request:*') && jobs.includes('pr-action:*'), jobs.join());
    assert.ok(
      grants.some((g) =>
        g.to.some((t: any) => t.hook?.startsWith('project-mozharness/in-tree-pr-action-1-')),
      ),
    );
  });

  it('the command prints the files; --json one document; a bad --project is a usage error', async () => {
    const env = { PATH: process.env.PATH, HOME: process.env.HOME };
    const r = await spawnCli(
      ['ci-config', '--project', 'try=https://hg.mozilla.org/try@1', '--json'],
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(doc.files).sort(), [
      'actions.yml',
      'grants.yml',
      'hooks.yml',
      'projects.yml',
      'roles.yml',
      'worker-pools.yml',
    ]);
    const bad = await spawnCli(['ci-config', '--project', 'try'], env);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /expected <name>=<repository URL>@<level>/);
  });
});
