// The archive contract: one builder and one parser per index namespace, the level order, the
// expected-archive reader, and a check that nothing outside src/contract spells a namespace.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as yaml from 'js-yaml';
import {
  archiveArtifactOf,
  cacheNamespace,
  cacheRouteOf,
  DEFAULT_ARCHIVE_ARTIFACT,
  downstreamExpectation,
  expectedArchive,
  isLatestRoute,
  latestNamespace,
  parseNamespace,
  pushdateNamespace,
  pushIndexNamespaces,
  pushlogIdNamespace,
  readableCacheNamespaces,
  readableLevels,
  revisionNamespace,
  PUSH_ROUTES,
  type PushFacts,
} from '../src/contract/index.js';
import { runDecision } from '../src/decision/decision.js';
import { makeParameters } from '../src/decision/parameters.js';
import { deterministicSlugid } from '../src/decision/taskids.js';

const REV = 'a'.repeat(40);
const DIGEST = 'd'.repeat(64);
const SHA = '5'.repeat(64);
const PUSH: PushFacts = {
  project: 'mozilla-central',
  revision: REV,
  pushlog_id: '42',
  pushdate: Date.UTC(2026, 10, 28, 1, 15, 43) / 1000,
};

describe('archive contract', () => {
  describe('index namespaces', () => {
    it('builds each per-push namespace, in route order', () => {
      assert.deepEqual(pushIndexNamespaces('mozharness', PUSH), [
        `mozharness.v1.mozilla-central.revision.${REV}.mozharness`,
        'mozharness.v1.mozilla-central.pushlog-id.42.mozharness',
        'mozharness.v1.mozilla-central.pushdate.2026.11.28.20261128011543.mozharness',
        'mozharness.v1.mozilla-central.latest.mozharness',
      ]);
      // no pushlog (a git push): no pushlog-id namespace
      assert.equal(pushIndexNamespaces('mozharness', { ...PUSH, pushlog_id: '0' }).length, 3);
      assert.equal(pushlogIdNamespace('mozharness', 'p', '0'), undefined);
    });

    it('parses what it builds, with a dotted prefix too', () => {
      for (const prefix of ['mozharness', 'org.example.ci']) {
        const [rev, pushlog, date, latest] = pushIndexNamespaces(prefix, PUSH);
        const base = { prefix, project: PUSH.project };
        assert.deepEqual(parseNamespace(rev!), { route: 'revision', ...base, revision: REV });
        assert.deepEqual(parseNamespace(pushlog!), {
          route: 'pushlog-id',
          ...base,
          pushlog_id: '42',
        });
        assert.deepEqual(parseNamespace(date!), {
          route: 'pushdate',
          ...base,
          pushdate: PUSH.pushdate,
        });
        assert.deepEqual(parseNamespace(latest!), { route: 'latest', ...base });
        assert.deepEqual(parseNamespace(cacheNamespace(prefix, 2, DIGEST)), {
          route: 'cache',
          prefix,
          level: 2,
          treeDigest: DIGEST,
        });
        assert.equal(revisionNamespace(prefix, PUSH.project, REV), rev);
        assert.equal(pushdateNamespace(prefix, PUSH.project, PUSH.pushdate), date);
        assert.equal(latestNamespace(prefix, PUSH.project), latest);
      }
    });

    it('parses nothing that is not an archive namespace', () => {
      for (const ns of [
        'mozharness.v1.p.revision.xyz.mozharness',
        'mozharness.v1.p.pushdate.2026.11.29.20261128011543.mozharness',
        'mozharness.v1.p.latest.taskgraph',
        `mozharness.cache.level-4.mozharness.hash.${DIGEST}`,
        `mozharness.cache.level-1.mozharness.hash.${DIGEST.slice(1)}`,
        'mozharness.v2.p.latest.mozharness',
      ]) {
        assert.equal(parseNamespace(ns), undefined, ns);
      }
    });

    it('finds the cache and latest routes among a task’s routes', () => {
      const routes = [
        ...pushIndexNamespaces('mozharness', PUSH).map((n) => `index.${n}`),
        `index.${cacheNamespace('mozharness', 1, DIGEST)}`,
        'tc-treeherder.v2.mozilla-central.' + REV,
      ];
      assert.deepEqual(cacheRouteOf(routes), {
        prefix: 'mozharness',
        level: 1,
        treeDigest: DIGEST,
        route: routes[4],
      });
      assert.deepEqual(routes.filter(isLatestRoute), [routes[3]]);
    });
  });

  describe('walkthrough: add an index route', () => {
    it('an entry in PUSH_ROUTES is all it takes for the archive task to carry it and the parser to read it', async () => {
      PUSH_ROUTES.push({
        name: 'owner',
        path: (p) => `owner.${p.project}-${p.pushlog_id}`,
        parse: (p) => (/^owner\.[a-z-]+-[0-9]+$/.test(p) ? {} : undefined),
      });
      try {
        const r = await runDecision({
          root: path.resolve('taskcluster'),
          digest: {
            treeDigest: DIGEST,
            sha256: SHA,
            size: 1,
            files: 1,
            revision: REV,
            subdir: 'testing/mozharness',
            formatVersion: 1,
          },
          params: makeParameters({
            project: PUSH.project,
            level: '3',
            head_repository: 'https://hg.mozilla.org/mozilla-central',
            repository_type: 'hg',
            head_rev: REV,
            base_rev: '',
            owner: 'o@example.com',
            pushlog_id: PUSH.pushlog_id,
            pushdate: PUSH.pushdate,
            tasks_for: 'hg-push',
            decision_task_id: deterministicSlugid('contract walkthrough'),
            taskcluster_root_url: 'https://tc.example.com',
          }),
        });
        const archive = Object.values(r.resolved.tasks).find(
          (t) => t.label === 'mozharness-archive',
        )!;
        const ns = 'mozharness.v1.mozilla-central.owner.mozilla-central-42.mozharness';
        assert.ok(archive.task.routes!.includes(`index.${ns}`), archive.task.routes!.join(' '));
        assert.equal(parseNamespace(ns)?.route, 'owner');
      } finally {
        PUSH_ROUTES.pop();
      }
    });
  });

  describe('trust levels', () => {
    it('reads the reader’s level and above, most trusted first, never below', () => {
      assert.deepEqual(readableLevels(1), [3, 2, 1]);
      assert.deepEqual(readableLevels('2'), [3, 2]);
      assert.deepEqual(readableLevels(3), [3]);
      assert.deepEqual(readableLevels(), [3, 2, 1]);
      assert.deepEqual(readableCacheNamespaces('m', '2', DIGEST), [
        cacheNamespace('m', 3, DIGEST),
        cacheNamespace('m', 2, DIGEST),
      ]);
      for (const bad of [0, 4, '3 ', 'x', 1.5]) assert.throws(() => readableLevels(bad), /level/);
    });
  });

  describe('the expected archive', () => {
    it('reads a downstream task’s expectation and an archive task’s index data', () => {
      const down = {
        extra: {
          mozharness: downstreamExpectation('T1', { sha256: SHA, treeDigest: DIGEST }, false),
        },
      };
      assert.deepEqual(expectedArchive(down), { sha256: SHA, treeDigest: DIGEST, taskId: 'T1' });
      const archive = {
        extra: {
          index: {
            rank: 1,
            data: { sha256: SHA, size: 10, treeDigest: DIGEST, artifactName: 'public/x.tar.gz' },
          },
        },
      };
      assert.deepEqual(expectedArchive(archive), {
        sha256: SHA,
        size: 10,
        treeDigest: DIGEST,
        artifactName: 'public/x.tar.gz',
      });
      assert.equal(expectedArchive({ extra: { mozharness: { sha256: 'nope' } } }), undefined);
      assert.equal(expectedArchive({}), undefined);
    });

    it('names the archive artifact from index data, else the default', () => {
      assert.equal(archiveArtifactOf({ artifactName: 'public/y.tar.gz' }), 'public/y.tar.gz');
      assert.equal(archiveArtifactOf({}), DEFAULT_ARCHIVE_ARTIFACT);
      assert.equal(archiveArtifactOf(undefined), DEFAULT_ARCHIVE_ARTIFACT);
    });

    it('defaults to the artifact name taskcluster/config.yml ships', () => {
      const config = yaml.load(fs.readFileSync('taskcluster/config.yml', 'utf8')) as {
        archive: { 'artifact-name': string };
      };
      assert.equal(config.archive['artifact-name'], DEFAULT_ARCHIVE_ARTIFACT);
    });
  });

  describe('one home', () => {
    // what spelling a namespace or an archive artifact looks like in source
    const SPELLINGS = [
      /\.cache\.level-/,
      /\.mozharness\.hash\./,
      /\.v1\.\$\{/,
      /\.(revision|pushlog-id|pushdate)\.\$\{[^}]*\}\.mozharness/,
      /\.latest\.mozharness/,
      /public\/build\/mozharness\.(tar\.gz|zip|json)/,
      /for \(let l = [^;]+; l (<=|>=) [^;]+; l(\+\+|--)\)/,
    ];
    const files = (dir: string): string[] =>
      fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
        const p = path.join(dir, d.name);
        return d.isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
      });

    it('nothing outside src/contract spells an index namespace, artifact name or level loop', () => {
      const found: string[] = [];
      for (const file of files('src')) {
        if (file.startsWith(path.join('src', 'contract') + path.sep)) continue;
        // Types generated from schemas/ quote the schemas' descriptions, which name the artifacts.
        if (file.startsWith(path.join('src', 'generated') + path.sep)) continue;
        fs.readFileSync(file, 'utf8')
          .split('\n')
          .forEach((line, i) => {
            if (SPELLINGS.some((re) => re.test(line)))
              found.push(`${file}:${i + 1}: ${line.trim()}`);
          });
      }
      assert.deepEqual(found, []);
    });
  });
});
