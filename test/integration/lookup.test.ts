// find, fetch, promote and deploy on the deployment's index: archives built by the real worker, indexed by their
// routes (asynchronously on the real services), found by revision (full and short), by tree
// digest and as the latest, then fetched, verified and unpacked by the CLI.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { buildArchive } from '../../src/archive/index.js';
import { cacheNamespace, latestNamespace, revisionNamespace } from '../../src/contract/index.js';
import { deployOnce } from '../../src/lookup/deploy.js';
import { findArchive } from '../../src/lookup/find.js';
import { promote } from '../../src/lookup/promote.js';
import { makeClients } from '../../src/taskcluster/client.js';
import { waitFor } from '../helpers/wait.js';
import { spawnCli } from '../helpers/cli.js';
import { startIntegrationEnv, type IntegrationEnv } from '../helpers/integration-env.js';
import { SAMPLE_SUBDIR } from '../helpers/repos.js';

const backendName = process.env.MOZHARNESS_TEST_BACKEND ?? 'embedded';

describe(`integration: find, fetch, promote and deploy on the index (${backendName} services)`, function () {
  this.timeout(180_000);
  let env: IntegrationEnv;
  let archived:
    | { prefix: string; project: string; revision: string; sha256: string; taskId: string }
    | undefined;

  before(async () => {
    env = await startIntegrationEnv({ variants: [undefined] });
  });
  after(async () => {
    await env?.close();
  });

  it('an archive the worker built is found by revision, short revision, digest and latest, and fetched', async () => {
    const prefix = env.backend.unique('lk');
    const project = 'mozilla-central';
    const revision = env.repo.revisions[0]!;
    const built = await buildArchive({
      source: { kind: 'hg', path: env.repo.path },
      revision,
      subdir: SAMPLE_SUBDIR,
    });
    const q = 'lookup';
    const taskId = await env.createTask(
      q,
      { repository: env.hg.url, revision, treeDigest: built.treeDigest },
      {
        routes: [
          `index.${revisionNamespace(prefix, project, revision)}`,
          `index.${latestNamespace(prefix, project)}`,
          `index.${cacheNamespace(prefix, 3, built.treeDigest)}`,
        ],
      },
    );
    const summary = await env.runOnce(q);
    assert.equal(summary.completed, 1, JSON.stringify(summary.results));
    await env.waitIndexed(latestNamespace(prefix, project), taskId);

    // anonymous lookups, as Treeherder users and the lookup service make them
    const anon = makeClients({ rootUrl: env.backend.rootUrl });
    for (const query of [
      { revision },
      { revision: revision.slice(0, 12) },
      { digest: built.treeDigest },
      { latest: true },
    ]) {
      const found = await waitFor(`find ${JSON.stringify(query)}`, () =>
        findArchive(anon, { project, prefix, ...query }),
      );
      assert.equal(found.taskId, taskId, JSON.stringify(query));
      assert.equal(found.sha256, built.sha256, JSON.stringify(query));
      assert.equal(found.revision, revision);
    }

    const dest = path.join(env.dir, 'fetched');
    const r = await spawnCli(
      [
        'fetch',
        '--root-url',
        env.backend.rootUrl,
        '--index-prefix',
        prefix,
        '--project',
        project,
        '--revision',
        revision,
        '--dest',
        dest,
        '--json',
      ],
      { PATH: process.env.PATH, HOME: process.env.HOME },
    );
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.sha256 ?? out.archive?.sha256, built.sha256, r.stdout);
    assert.ok(fs.existsSync(path.join(dest, 'scripts', 'desktop_unittest.py')));
    archived = { prefix, project, revision, sha256: built.sha256, taskId };
  });

  it('promote puts the found archive in a known-good manifest; deploy unpacks it and switches current', async function () {
    if (!archived) this.skip();
    const a = archived!;
    const manifest = { kind: 'file' as const, path: path.join(env.dir, 'known-good.json') };
    const anon = makeClients({ rootUrl: env.backend.rootUrl });
    const promoted = await promote(
      { ...anon, io: {} },
      {
        channel: 'production',
        manifest,
        project: a.project,
        revision: a.revision,
        prefix: a.prefix,
        promotedBy: 'integration-test',
      },
    );
    assert.equal(promoted.channel, 'production');
    const doc = JSON.parse(fs.readFileSync(manifest.path, 'utf8'));
    assert.equal(doc.channels.production.sha256, a.sha256);
    assert.equal(doc.channels.production.taskId, a.taskId);
    const root = path.join(env.dir, 'deploy-root');
    const r = await deployOnce({ manifest, channel: 'production', root });
    assert.equal(r.outcome, 'deployed');
    const current = fs.realpathSync(path.join(root, 'current'));
    assert.ok(current.includes(a.sha256), current);
    assert.ok(fs.existsSync(path.join(root, 'current', 'scripts', 'desktop_unittest.py')));
    const again = await deployOnce({ manifest, channel: 'production', root });
    assert.equal(again.outcome, 'unchanged');
  });
});
