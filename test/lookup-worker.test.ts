// End to end with the real worker: the lookup service creates an on-demand archive task, the
// mozharness-archive worker (runWorker, once) builds and uploads it, the embedded Index indexes it
// on completion, and the endpoint, `find` and `promote` + `deploy` then serve those exact bytes.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { buildArchive } from '../src/archive/index.js';
import { checkLookupConfig } from '../src/lookup/config.js';
import { currentVersion, deploy } from '../src/lookup/deploy.js';
import { findArchive } from '../src/lookup/find.js';
import { parseManifestLocation } from '../src/lookup/manifest.js';
import { promote } from '../src/lookup/promote.js';
import { createLookupService, type LookupService } from '../src/lookup/serve.js';
import { indexClient, makeClients } from '../src/taskcluster/client.js';
import { SAMPLE_SUBDIR } from './helpers/repos.js';
import { assertUpstream } from './helpers/upstream.js';
import { startWorkerEnv, type WorkerEnv } from './helpers/worker-env.js';

describe('lookup end to end with the real worker', function () {
  this.timeout(120_000);
  let env: WorkerEnv;
  let service: LookupService;
  let base: string;
  const QUEUE = 'lookup';

  before(async () => {
    env = await startWorkerEnv();
    const anonIndex = indexClient({ rootUrl: env.embedded.rootUrl });
    service = createLookupService(
      checkLookupConfig({
        allowHosts: [env.s3.endpoint],
        projects: {
          'mozilla-central': {
            repository: env.hg.url,
            legacyPath: 'mozilla-central',
            onDemand: { taskQueueId: `proj-mozharness/${QUEUE}`, maxRunTime: 300 },
          },
        },
      }),
      {
        index: anonIndex,
        queue: env.root,
        createQueue: env.root,
        rootUrl: env.embedded.rootUrl,
        stateDir: path.join(env.dir, 'lookup'),
      },
    );
    base = await service.listen(0);
  });
  after(async () => {
    await service?.close();
    await env?.close();
  });

  it('202 → worker builds → completed → 302 to the exact bytes; find, promote and deploy follow', async () => {
    const rev = env.repo.revisions[1]!;
    const r = await fetch(`${base}/v1/mozilla-central/revision/${rev.slice(0, 12)}`, {
      redirect: 'manual',
    });
    assert.equal(r.status, 202, await r.text());
    const taskId = r.headers.get('x-task-id')!;
    // the on-demand task is an upstream-valid task definition the worker accepts
    const def = await env.root.task(taskId);
    assertUpstream('/schemas/queue/v1/task.json', def, 'on-demand task');

    const summary = await env.runOnce(QUEUE);
    assert.equal(summary.completed, 1, JSON.stringify(summary.results));

    const status: any = await (await fetch(`${base}/v1/status/${taskId}`)).json();
    assert.equal(status.state, 'completed');
    const expected = await buildArchive({
      source: { kind: 'hg', path: env.repo.path },
      revision: rev,
      subdir: SAMPLE_SUBDIR,
    });
    assert.equal(status.sha256, expected.sha256);

    const hit = await fetch(`${base}/v1/mozilla-central/revision/${rev}`, { redirect: 'manual' });
    assert.equal(hit.status, 302);
    assert.equal(hit.headers.get('x-archive-sha256'), expected.sha256);
    const bytes = Buffer.from(await (await fetch(hit.headers.get('location')!)).arrayBuffer());
    assert.equal(createHash('sha256').update(bytes).digest('hex'), expected.sha256);

    const anon = makeClients({ rootUrl: env.embedded.rootUrl });
    const found = await findArchive(anon, { project: 'mozilla-central', revision: rev });
    assert.equal(found.taskId, taskId);
    assert.equal(found.treeDigest, expected.treeDigest);

    const manifest = path.join(env.dir, 'known-good.json');
    await promote(
      { index: anon.index, queue: env.root, io: {} },
      {
        channel: 'release',
        manifest: parseManifestLocation(manifest),
        project: 'mozilla-central',
        revision: rev,
      },
    );
    const root = path.join(env.dir, 'deploy');
    const d = await deploy({ manifest: parseManifestLocation(manifest), channel: 'release', root });
    assert.equal(d.outcome, 'deployed');
    assert.equal(await currentVersion(root), expected.sha256);
    assert.ok(fs.existsSync(path.join(root, 'current', 'mozharness')));
  });
});
