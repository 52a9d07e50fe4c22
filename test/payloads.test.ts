// Payload builders: one per worker implementation, in one registry. An implementation the registry
// does not know is a config error when config.yml loads; registering one is all it takes for a
// downstream kind to run on it (the walkthrough "add a downstream worker implementation").
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as yaml from 'js-yaml';
import { parseGraphConfig } from '../src/decision/config.js';
import { runDecision } from '../src/decision/decision.js';
import type { HarnessDigest } from '../src/decision/digest.js';
import { makeParameters, type Parameters } from '../src/decision/parameters.js';
import {
  payloadBuilders,
  registerPayloadBuilder,
  unregisterPayloadBuilder,
} from '../src/decision/payloads.js';
import { deterministicSlugid } from '../src/decision/taskids.js';
import { isArchiveError } from '../src/util/errors.js';

const ROOT = path.resolve('taskcluster');
const DIGEST: HarnessDigest = {
  treeDigest: '1f'.repeat(32),
  sha256: 'ab'.repeat(32),
  size: 123456,
  files: 321,
  revision: 'c0ffee'.padEnd(40, '0'),
  subdir: 'testing/mozharness',
  formatVersion: 1,
};
const PARAMS: Parameters = makeParameters({
  project: 'mozilla-central',
  level: '3',
  head_repository: 'https://hg.mozilla.org/mozilla-central',
  repository_type: 'hg',
  head_rev: DIGEST.revision,
  base_rev: '',
  owner: 'ffxbld@mozilla.com',
  pushlog_id: '40123',
  pushdate: 1764290000,
  tasks_for: 'hg-push',
  decision_task_id: deterministicSlugid('decision payloads'),
  taskcluster_root_url: 'https://firefox-ci-tc.services.mozilla.com',
});

async function configYml(): Promise<Record<string, any>> {
  return yaml.load(await fs.readFile(path.join(ROOT, 'config.yml'), 'utf8')) as Record<string, any>;
}

describe('payload builders', () => {
  it('has one builder per implementation, each naming its schema', () => {
    const impls = payloadBuilders().map((b) => b.implementation);
    assert.deepEqual(impls, ['mozharness-archive', 'docker-worker', 'generic-worker']);
    for (const b of payloadBuilders()) assert.ok(b.schema && (b.archive || b.downstream));
  });

  it('refuses an unknown worker implementation when config.yml loads, naming the known ones', async () => {
    const raw = await configYml();
    raw.workers.aliases['t-win'] = { implementation: 'windows-worker', 'task-queue-id': 'a/b' };
    assert.throws(
      () => parseGraphConfig(raw),
      (e: unknown) =>
        isArchiveError(e) &&
        e.code === 'invalid-config' &&
        /workers\.aliases\.t-win\.implementation: 'windows-worker' is not a known worker implementation \(known: mozharness-archive, docker-worker, generic-worker\)/.test(
          e.message,
        ),
    );
  });

  it("refuses an alias without the fields its implementation needs (docker-worker's image)", async () => {
    const raw = await configYml();
    delete raw.workers.aliases['b-linux'].image;
    assert.throws(
      () => parseGraphConfig(raw),
      /workers\.aliases\.b-linux\.image: is required for docker-worker/,
    );
  });

  it('adding a downstream worker implementation is registering its builder', async () => {
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'payloads-'));
    registerPayloadBuilder({
      implementation: 'fake-worker',
      schema: 'fake-worker.json',
      requiredAliasFields: ['image'],
      downstream: ({ spec, archive, args }) => ({
        run: [spec.mozharness.script, ...args],
        harness: { url: archive.url, sha256: archive.sha256 },
      }),
    });
    try {
      await fs.cp(ROOT, tmp, { recursive: true });
      const raw = await configYml();
      raw.workers.aliases['t-osx'] = {
        implementation: 'fake-worker',
        'task-queue-id': 'fake/osx',
        image: 'fake:1',
      };
      await fs.writeFile(path.join(tmp, 'config.yml'), yaml.dump(raw));
      const r = await runDecision({ params: PARAMS, root: tmp, digest: DIGEST });
      const tasks = Object.values(r.resolved.tasks).filter(
        (t) => t.task.tags?.['worker-implementation'] === 'fake-worker',
      );
      assert.ok(tasks.length >= 1, 'a task runs on the fake implementation');
      for (const t of tasks) {
        assert.equal(t.task.taskQueueId, 'fake/osx');
        const p = t.task.payload as { run: string[]; harness: { url: string; sha256: string } };
        assert.equal(p.harness.sha256, DIGEST.sha256);
        assert.match(p.harness.url, /mozharness\.tar\.gz$/);
        assert.ok(p.run.includes('--config-file'));
      }
    } finally {
      unregisterPayloadBuilder('fake-worker');
      await fs.rm(tmp, { recursive: true, force: true });
    }
    // once unregistered, the same config is refused again
    const raw = await configYml();
    raw.workers.aliases['t-osx'].implementation = 'fake-worker';
    assert.throws(() => parseGraphConfig(raw), /not a known worker implementation/);
  });

  it('with the zip configured, downstream tasks fetch it: MOZHARNESS_URL and generic-worker mounts, with its predicted sha256', async () => {
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'payloads-zip-'));
    try {
      await fs.cp(ROOT, tmp, { recursive: true });
      const raw = await configYml();
      raw.archive['zip-artifact-name'] = 'public/build/mozharness.zip';
      await fs.writeFile(path.join(tmp, 'config.yml'), yaml.dump(raw));
      const zip = { sha256: 'cd'.repeat(32), size: 234567 };
      const r = await runDecision({ params: PARAMS, root: tmp, digest: { ...DIGEST, zip } });
      const tasks = Object.values(r.resolved.tasks);
      const archive = tasks.find((t) => t.label === 'mozharness-archive')!.task;
      assert.equal(archive.payload.sha256, DIGEST.sha256);
      assert.equal(archive.payload.zipSha256, zip.sha256);
      assert.deepEqual((archive.extra as any).index.data.zip, {
        artifactName: 'public/build/mozharness.zip',
        ...zip,
      });
      let docker = 0;
      let generic = 0;
      for (const t of tasks) {
        const impl = t.task.tags?.['worker-implementation'];
        if (impl === 'docker-worker') {
          docker++;
          const env = t.task.payload.env as Record<string, string>;
          assert.match(env.MOZHARNESS_URL!, /\/artifacts\/public%2Fbuild%2Fmozharness\.zip$/);
          assert.equal(env.MOZHARNESS_SHA256, zip.sha256);
          assert.ok(env.MOZHARNESS_SCRIPT && !env.MOZHARNESS_SCRIPT.startsWith('scripts/'));
          assert.ok(env.MOZHARNESS_CONFIG);
        } else if (impl === 'generic-worker') {
          generic++;
          assert.deepEqual((t.task.payload as any).mounts[0].format, 'zip');
          assert.deepEqual(
            (t.task.payload as any).mounts[0].content.artifact,
            'public/build/mozharness.zip',
          );
          assert.deepEqual((t.task.payload as any).mounts[0].content.sha256, zip.sha256);
        }
        if (impl !== 'mozharness-archive') {
          assert.equal((t.task.extra as any).mozharness.sha256, DIGEST.sha256);
          assert.equal((t.task.extra as any).mozharness.zip.sha256, zip.sha256);
        }
      }
      assert.ok(docker > 0 && generic > 0);
    } finally {
      await fs.rm(tmp, { recursive: true, force: true });
    }
  });
});
