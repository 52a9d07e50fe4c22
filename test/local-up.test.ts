// `local up` as a developer starts it: one JSON line says where to push and where the dashboard
// is; Ctrl-C stops the services, the repository server and the worker pools, and leaves no
// process behind.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { triggerAction } from '../src/actions/trigger.js';
import { listTaskGroup } from '../src/taskcluster/listing.js';
import { createSampleRepo } from '../src/local/sample-repo.js';
import { queueClient } from '../src/taskcluster/client.js';
import { startCli } from './helpers/cli.js';
import { noProcessLeft } from './helpers/forest.js';
import { giveUp, waitFor } from './helpers/wait.js';

describe('local up --repo (command line)', function () {
  this.timeout(180_000);

  it('prints the push URL, the dashboard and the queues; Ctrl-C leaves nothing running', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mha-local-up-'));
    const stateDir = path.join(tmp, 'state');
    try {
      const repo = await createSampleRepo(path.join(tmp, 'gecko'), 'git', path.resolve('.'));
      const cli = startCli(['local', 'up', '--repo', repo.path, '--state-dir', stateDir, '--json']);
      const { child, exited } = cli;
      const info = await waitFor(
        'the JSON line of local up',
        () => (cli.stdout.includes('\n') ? JSON.parse(cli.stdout.split('\n')[0]!) : undefined),
        { timeoutMs: 120_000 },
      );
      assert.match(info.repository.url, /^http:\/\/127\.0\.0\.1:\d+\/mozilla-central$/);
      assert.equal(info.repository.vcs, 'git');
      assert.ok(info.taskQueueIds.includes('mozharness-3/decision'), info.taskQueueIds.join());
      assert.ok(info.taskQueueIds.includes('mozharness-3/archive'));
      assert.match(info.dashboardUrl, /^http:\/\/127\.0\.0\.1:\d+\/$/);
      const page = await fetch(info.dashboardUrl);
      assert.equal(page.status, 200);
      // the repository answers git's smart-HTTP discovery for a push
      const refs = await fetch(`${info.repository.url}/info/refs?service=git-receive-pack`);
      assert.equal(refs.status, 200, 'receive-pack is enabled');

      child.kill('SIGINT');
      assert.equal(await exited, 0, cli.stderr);
      await noProcessLeft(stateDir);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('local run --keep-serving: the replayed pushes stay on the dashboard until Ctrl-C', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mha-keep-serving-'));
    const stateDir = path.join(tmp, 'state');
    try {
      const cli = startCli([
        'local',
        'run',
        '--no-retrigger',
        '--keep-serving',
        '--state-dir',
        stateDir,
        '--json',
      ]);
      const { child, exited } = cli;
      // the replay's summary document, then local up's JSON line
      const lines = await waitFor(
        'the replay summary and the JSON line of local up',
        () => {
          if (child.exitCode !== null) giveUp(`local run exited early: ${cli.stderr}`);
          const docs = cli.stdout
            .split('\n')
            .filter((l) => l.startsWith('{') && l.endsWith('}'))
            .map((l) => JSON.parse(l) as Record<string, unknown>);
          return docs.some((d) => typeof d.dashboardUrl === 'string') ? docs : undefined;
        },
        { timeoutMs: 170_000 },
      );
      const up = lines.find((d) => typeof d.dashboardUrl === 'string')!;
      const page = await fetch(String(up.dashboardUrl));
      assert.equal(page.status, 200);
      const html = await page.text();
      // every replayed push is listed
      assert.ok((html.match(/class="push\b/g) ?? []).length >= 3, html.slice(0, 2000));

      // an action triggered on the state that run left runs, and so do the tasks it makes
      const summary = JSON.parse(cli.stdout.slice(0, cli.stdout.indexOf('\n{"rootUrl"') + 1)) as {
        pushes: Array<{ decisionTaskId: string; tasks: Array<{ label: string }> }>;
      };
      const push = summary.pushes[summary.pushes.length - 1]!;
      const label = push.tasks.map((t) => t.label).find((l) => l.startsWith('test-'))!;
      const credentials = {
        clientId: String((up.credentials as any).clientId),
        accessToken: String((up.credentials as any).accessToken),
      };
      const queue = queueClient({ rootUrl: String(up.rootUrl), credentials });
      const before = new Set(
        (await listTaskGroup(queue, push.decisionTaskId)).map((t) => t.status.taskId),
      );
      const r = await triggerAction({
        rootUrl: String(up.rootUrl),
        credentials,
        decisionTaskId: push.decisionTaskId,
        action: 'retrigger-multiple',
        input: { requests: [{ tasks: [label], times: 1 }] },
      });
      const added = await waitFor(
        'the action task and the retriggered task to complete',
        async () => {
          const tasks = (await listTaskGroup(queue, push.decisionTaskId)).filter(
            (t) => !before.has(t.status.taskId),
          );
          return tasks.some((t) => t.task.metadata.name === label) &&
            tasks.every((t) => t.status.state === 'completed')
            ? tasks
            : undefined;
        },
        { timeoutMs: 120_000 },
      );
      assert.ok(
        added.some((t) => t.status.taskId === r.actionTaskId),
        'the action task ran',
      );
      child.kill('SIGINT');
      assert.equal(await exited, 0, cli.stderr);
      await noProcessLeft(stateDir);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
