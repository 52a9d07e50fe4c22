// `npm start` (local run) end to end, as a newcomer runs it: three pushes of the sample
// repository through the embedded services, the archive worker and the downstream tasks, then a
// second run on the same state directory.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startEmbedded } from '../src/local/embedded.js';
import { createSampleRepo } from '../src/local/sample-repo.js';
import { findArchive } from '../src/lookup/find.js';
import { indexClient, queueClient } from '../src/taskcluster/client.js';

const run = promisify(execFile);

interface Summary {
  ok: boolean;
  pushes: Array<{
    revision: string;
    producer: string;
    project: string;
    decisionTaskId: string;
    archive: {
      taskId: string;
      reused: boolean;
      treeDigest: string;
      sha256: string;
      url: string;
      namespaces: string[];
    };
    repoRequests: number | null;
    tasks: Array<{ label: string; taskId: string; state: string }>;
  }>;
  retrigger?: { action: string; tasks: Array<{ label: string; state: string }> };
}

async function npmStart(stateDir: string): Promise<Summary> {
  const { stdout } = await run(
    'npm',
    ['start', '--silent', '--', '--json', '--state-dir', stateDir],
    {
      cwd: path.resolve('.'),
      env: { ...process.env, CI: 'true' },
      maxBuffer: 32 << 20,
      timeout: 600_000,
    },
  );
  return JSON.parse(stdout) as Summary;
}

describe('npm start (local run)', function () {
  this.timeout(900_000);
  let tmp: string;
  let first: Summary;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mha-npm-start-'));
    first = await npmStart(path.join(tmp, 'state'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('builds, reuses with zero repository requests, then rebuilds', () => {
    assert.equal(first.ok, true);
    // a git repository by default, rendered as build-decision's git-push renders it: a
    // repository missing from .taskcluster.yml's projects map runs at level 1 as <name>-try
    for (const p of first.pushes) {
      assert.equal(p.producer, 'git-push');
      assert.equal(p.project, 'mozilla-central-try');
    }
    assert.equal(first.pushes.length, 3);
    const [p1, p2, p3] = first.pushes as [
      Summary['pushes'][0],
      Summary['pushes'][0],
      Summary['pushes'][0],
    ];
    assert.equal(p1.archive.reused, false);
    assert.ok(p1.tasks.some((t) => t.label === 'mozharness-archive' && t.state === 'completed'));
    assert.match(p1.archive.sha256, /^[0-9a-f]{64}$/);
    assert.ok((p1.repoRequests ?? 0) > 0, 'the first push fetches the harness from hg');

    assert.equal(p2.archive.reused, true);
    assert.equal(p2.archive.taskId, p1.archive.taskId);
    assert.equal(p2.archive.sha256, p1.archive.sha256);
    assert.equal(
      p2.repoRequests,
      0,
      'a push that leaves the harness alone makes no repository request',
    );
    assert.ok(!p2.tasks.some((t) => t.label === 'mozharness-archive'), 'no archive task');
    assert.ok(
      p2.archive.namespaces.some((n) => n.includes(`.revision.${p2.revision}.`)),
      'the reusing push is indexed by its own revision',
    );

    assert.equal(p3.archive.reused, false);
    assert.notEqual(p3.archive.sha256, p1.archive.sha256);
    assert.notEqual(p3.archive.treeDigest, p1.archive.treeDigest);
  });

  it('runs every downstream task to completion after verifying the archive', () => {
    for (const p of first.pushes) {
      const downstream = p.tasks.filter((t) => /^(build|test)-/.test(t.label));
      // the level-1 target set of a try-like git push: builds and tests on both pool kinds
      assert.ok(downstream.length >= 5, `downstream tasks of ${p.revision}`);
      for (const t of p.tasks) assert.equal(t.state, 'completed', `${t.label} ${t.taskId}`);
    }
  });

  it('shows a retrigger through the Treeherder path', () => {
    assert.equal(first.retrigger?.action, 'retrigger-multiple');
    assert.ok(first.retrigger!.tasks.length >= 2, 'the action task and the retriggered task');
    for (const t of first.retrigger!.tasks) assert.equal(t.state, 'completed', t.label);
  });

  it('finds every push by revision (full and short) and the latest, after the run', async () => {
    const embedded = await startEmbedded({ stateDir: path.join(tmp, 'state'), sweepIntervalMs: 0 });
    try {
      const clients = {
        index: indexClient({ rootUrl: embedded.rootUrl }),
        queue: queueClient({ rootUrl: embedded.rootUrl }),
      };
      const [p1, p2, p3] = first.pushes as [
        Summary['pushes'][0],
        Summary['pushes'][0],
        Summary['pushes'][0],
      ];
      const f1 = await findArchive(clients, { project: p1.project, revision: p1.revision });
      assert.equal(f1.taskId, p1.archive.taskId);
      assert.equal(f1.sha256, p1.archive.sha256);
      const f2 = await findArchive(clients, {
        project: p2.project,
        revision: p2.revision.slice(0, 12),
      });
      assert.equal(
        f2.taskId,
        p1.archive.taskId,
        'the reusing push resolves to the archive it reused',
      );
      assert.equal(f2.revision, p2.revision);
      assert.equal(f2.archiveRevision, p1.revision);
      const latest = await findArchive(clients, { project: p3.project, latest: true });
      assert.equal(latest.taskId, p3.archive.taskId);
    } finally {
      await embedded.close();
    }
  });

  it('downstream tasks fetched and verified mozharness.zip through MOZHARNESS_URL (and any generic-worker mount as format zip)', async () => {
    const embedded = await startEmbedded({ stateDir: path.join(tmp, 'state'), sweepIntervalMs: 0 });
    try {
      const queue = queueClient({ rootUrl: embedded.rootUrl, credentials: embedded.credentials });
      const log = async (taskId: string) => {
        const url = queue.buildUrl(queue.getLatestArtifact, taskId, 'public/logs/live_backing.log');
        const res = await fetch(url);
        assert.equal(res.status, 200, `log of ${taskId}`);
        return res.text();
      };
      const kinds = new Set<string>();
      const downstream = first.pushes.flatMap((p) =>
        p.tasks.filter((x) => /^(build|test)-/.test(x.label)),
      );
      for (const t of downstream) {
        const task = await queue.task(t.taskId);
        const impl = task.tags!['worker-implementation']!;
        kinds.add(impl);
        const text = await log(t.taskId);
        if (impl === 'docker-worker') {
          const env = task.payload.env as Record<string, string>;
          assert.match(env.MOZHARNESS_URL!, /public%2Fbuild%2Fmozharness\.zip$/, t.label);
          assert.ok(
            text.includes(`sha256 ${env.MOZHARNESS_SHA256}`),
            `${t.label} verified the zip's sha256:\n${text}`,
          );
          assert.match(text, /unpacked \d+ entries \(zip\)/, t.label);
        } else {
          const [mount] = task.payload.mounts as Array<{
            format: string;
            content: { artifact: string; sha256: string };
          }>;
          assert.equal(mount!.format, 'zip', t.label);
          assert.equal(mount!.content.artifact, 'public/build/mozharness.zip', t.label);
          assert.ok(text.includes(`verified sha256 ${mount!.content.sha256}`), text);
        }
      }
      // a level-1 push's target set may hold no generic-worker task; its mounts are covered when it does
      assert.ok(kinds.has('docker-worker'), [...kinds].join());
    } finally {
      await embedded.close();
    }
  });

  it('reuses the archives of the first run on the same state directory', async () => {
    const second = await npmStart(path.join(tmp, 'state'));
    assert.equal(second.ok, true);
    assert.equal(second.pushes[0]!.archive.reused, true);
    assert.equal(second.pushes[0]!.archive.taskId, first.pushes[0]!.archive.taskId);
    assert.equal(second.pushes[2]!.archive.taskId, first.pushes[2]!.archive.taskId);
    for (const p of second.pushes) assert.equal(p.repoRequests, 0);
  });
});

describe('local run --repo (a git repository, served with git http-backend)', function () {
  this.timeout(600_000);

  it('replays its last three revisions: built, reused with zero requests, rebuilt', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mha-local-git-'));
    try {
      const repo = await createSampleRepo(path.join(tmp, 'gecko'), 'git', path.resolve('.'));
      const { stdout } = await run(
        process.execPath,
        [
          '--import',
          'tsx',
          'src/cli/main.ts',
          'local',
          'run',
          '--repo',
          repo.path,
          '--state-dir',
          path.join(tmp, 'state'),
          '--no-retrigger',
          '--json',
        ],
        { cwd: path.resolve('.'), maxBuffer: 32 << 20, timeout: 500_000 },
      );
      const s = JSON.parse(stdout) as Summary & { repository: string };
      assert.equal(s.ok, true);
      assert.match(s.repository, /^http:\/\/127\.0\.0\.1:\d+\/mozilla-central$/);
      assert.deepEqual(
        s.pushes.map((p) => p.revision),
        repo.pushes.map((p) => p.revision),
      );
      assert.deepEqual(
        s.pushes.map((p) => p.archive.reused),
        [false, true, false],
      );
      assert.ok(s.pushes[0]!.repoRequests! > 0);
      assert.equal(s.pushes[1]!.repoRequests, 0);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
