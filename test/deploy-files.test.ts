// The files a release engineer deploys with (examples/, taskcluster/docker/) are well formed and
// keep the trust levels apart: each IAM policy and pool definition names only resources of its
// level, the bucket policy lets the public read and only each level's writer write its prefix,
// the systemd units pass `systemd-analyze verify` (or a parse check where it is missing) and are
// sandboxed, and every Dockerfile pins its base image by digest and is thin over its install.sh.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const readJson = (f: string) => JSON.parse(fs.readFileSync(f, 'utf8'));
const LEVELS = ['1', '3'];
const otherLevels = (l: string) => ['1', '2', '3'].filter((x) => x !== l);

function resources(policy: any): string[] {
  return policy.Statement.flatMap((s: any) => [s.Resource].flat());
}

describe('deployment files', () => {
  for (const level of LEVELS) {
    it(`level ${level}: the writer's IAM policy names only the level-${level} prefix`, () => {
      const p = readJson(`examples/aws/iam-writer-level-${level}.json`);
      assert.equal(p.Version, '2012-10-17');
      for (const r of resources(p)) {
        assert.match(r, /^arn:aws:s3:::mozharness-archive(\/level-\d\/\*)?$/, r);
        for (const other of otherLevels(level)) assert.ok(!r.includes(`level-${other}`), r);
      }
      const writes = p.Statement.filter((s: any) => [s.Action].flat().includes('s3:PutObject'));
      assert.ok(writes.length > 0);
      for (const s of writes)
        assert.deepEqual([s.Resource].flat(), [`arn:aws:s3:::mozharness-archive/level-${level}/*`]);
      const list = p.Statement.find((s: any) => [s.Action].flat().includes('s3:ListBucket'));
      assert.deepEqual(list.Condition.StringLike['s3:prefix'], [`level-${level}/*`]);
    });

    it(`level ${level}: the worker pool definitions name only level-${level} queues and prefixes`, () => {
      for (const kind of ['archive', 'decision']) {
        const file = `examples/worker-pools/mozharness-${level}-${kind}.json`;
        const p = readJson(file);
        assert.equal(p.providerId, 'static');
        assert.ok(p.config.lifecycle.reregistrationTimeout > 0);
        assert.equal(p.config.workerConfig.taskQueueId, `mozharness-${level}/${kind}`);
        const text = JSON.stringify(p);
        for (const other of otherLevels(level)) {
          assert.ok(!text.includes(`mozharness-${other}/`), `${file} names level ${other}`);
          assert.ok(!text.includes(`level-${other}`), `${file} names level ${other}`);
        }
        if (kind === 'archive') {
          assert.ok(p.config.workerConfig.s3.prefix.startsWith(`level-${level}/`));
        }
      }
    });
  }

  it('the bucket policy: the public reads; each level prefix is written only by its writer', () => {
    const p = readJson('examples/aws/bucket-policy.json');
    const read = p.Statement.find((s: any) => s.Effect === 'Allow' && s.Principal === '*');
    assert.deepEqual([read.Action].flat(), ['s3:GetObject']);
    for (const level of LEVELS) {
      assert.ok(read.Resource.includes(`arn:aws:s3:::mozharness-archive/level-${level}/*`));
      const deny = p.Statement.find(
        (s: any) =>
          s.Effect === 'Deny' &&
          [s.Resource].flat().includes(`arn:aws:s3:::mozharness-archive/level-${level}/*`),
      );
      assert.ok(deny, `a deny for level ${level}`);
      assert.ok([deny.Action].flat().includes('s3:PutObject'));
      const writer = deny.Condition.ArnNotEquals['aws:PrincipalArn'];
      assert.match(writer, new RegExp(`writer-level-${level}$`));
    }
  });

  it('systemd units are sandboxed and pass systemd-analyze verify (or parse)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'units-'));
    try {
      const units = fs.readdirSync('examples/systemd');
      assert.deepEqual(units.sort(), [
        'mozharness-archive-deploy@.service',
        'mozharness-archive-serve.service',
        'mozharness-archive-worker@.service',
      ]);
      const instances: string[] = [];
      for (const u of units) {
        const text = fs.readFileSync(path.join('examples/systemd', u), 'utf8');
        const sections = [...text.matchAll(/^\[(\w+)\]$/gm)].map((m) => m[1]);
        assert.deepEqual(sections, ['Unit', 'Service', 'Install'], u);
        for (const line of text.split('\n')) {
          if (!line.trim() || line.startsWith('#') || line.startsWith('[')) continue;
          assert.match(line, /^[A-Za-z]+=/, `${u}: ${line}`);
        }
        for (const d of [
          'NoNewPrivileges=yes',
          'ProtectSystem=strict',
          'PrivateTmp=yes',
          'ProtectHome=yes',
        ]) {
          assert.ok(text.includes(`\n${d}\n`), `${u}: ${d}`);
        }
        assert.match(
          text,
          /^ExecStart=\/usr\/local\/bin\/mozharness-archive (worker|serve|deploy) /m,
        );
        if (u.startsWith('mozharness-archive-deploy')) assert.match(text, / --watch /);
        const instance = u.replace('@.service', '@3.service');
        fs.writeFileSync(
          path.join(dir, instance),
          text.replace(/\/usr\/local\/bin\/mozharness-archive/g, '/bin/true'),
        );
        instances.push(instance);
      }
      const which = spawnSync('sh', ['-c', 'command -v systemd-analyze'], { encoding: 'utf8' });
      if (which.status !== 0) return; // parse checks above only
      const r = spawnSync('systemd-analyze', ['verify', ...instances.map((i) => `./${i}`)], {
        cwd: dir,
        encoding: 'utf8',
      });
      const complaints = (r.stderr + r.stdout)
        .split('\n')
        .filter((l) => instances.some((i) => l.includes(i)));
      assert.deepEqual(complaints, [], 'systemd-analyze verify');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('images: each Dockerfile pins its base by digest and runs its install.sh, which parses', () => {
    const images = fs
      .readdirSync('taskcluster/docker', { withFileTypes: true })
      .filter((d) => d.isDirectory() && d.name !== 'common')
      .map((d) => d.name)
      .sort();
    assert.deepEqual(images, ['archive-worker', 'decision', 'downstream', 'lookup']);
    for (const img of images) {
      const df = fs.readFileSync(`taskcluster/docker/${img}/Dockerfile`, 'utf8');
      const froms = [...df.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]!);
      assert.ok(froms.length >= 1, img);
      for (const f of froms)
        assert.match(f, /^[a-z0-9./-]+:[\w.-]+@sha256:[0-9a-f]{64}$/, `${img}: ${f}`);
      assert.match(df, new RegExp(`taskcluster/docker/${img}/install\\.sh`), img);
      const runs = df.split('\n').filter((l) => l.startsWith('RUN '));
      assert.equal(runs.length, 1, `${img}: thin, one RUN of install.sh`);
    }
    for (const f of [
      ...images.map((i) => `taskcluster/docker/${i}/install.sh`),
      'taskcluster/docker/common/install-cli.sh',
      'taskcluster/docker/common/install-packages.sh',
      'taskcluster/docker/check-install.sh',
    ]) {
      const r = spawnSync('bash', ['-n', f], { encoding: 'utf8' });
      assert.equal(r.status, 0, `${f}: ${r.stderr}`);
    }
  });
});
