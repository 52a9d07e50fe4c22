// Worker configuration, payload validation and the test-command sandbox (no services needed).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger, silentLogger } from '../src/util/log.js';
import { ArchiveError } from '../src/util/errors.js';
import {
  checkPayload,
  describeConfig,
  loadWorkerConfig,
  testEnvironment,
} from '../src/worker/index.js';
import { TaskLog } from '../src/worker/task-log.js';
import { spawnCli } from './helpers/cli.js';
import { runTestCommand } from '../src/worker/test-command.js';

const REV = 'a'.repeat(40);
const ALLOW = ['http://127.0.0.1:8000/'];
const good = {
  repository: 'http://127.0.0.1:8000/mozilla-central',
  revision: REV,
  subdir: 'testing/mozharness',
  maxRunTime: 600,
};

describe('worker configuration', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'worker-config-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('merges file < environment < flags and applies defaults', () => {
    const file = path.join(dir, 'worker.yml');
    fs.writeFileSync(
      file,
      [
        'rootUrl: http://file.invalid',
        'taskQueueId: proj-mozharness/archive',
        'workerGroup: file-group',
        'workerId: file-id',
        'capacity: 2',
        's3: {bucket: from-file, prefix: archives, region: eu-west-1}',
        'allowRepos: ["https://hg.mozilla.org/"]',
        'limits: {retries: 2, maxFiles: 1000}',
      ].join('\n'),
    );
    const c = loadWorkerConfig(
      {
        config: file,
        workerId: 'flag-id',
        s3Bucket: 'from-flag',
        capacity: '4',
        allowRepo: ['http://127.0.0.1:1/'],
      },
      {
        TASKCLUSTER_ROOT_URL: 'http://env.invalid/',
        TASKCLUSTER_CLIENT_ID: 'worker/client',
        TASKCLUSTER_ACCESS_TOKEN: 'secret-token-123456',
        AWS_REGION: 'us-west-2',
        AWS_SECRET_ACCESS_KEY: 'aws-secret-abcdef',
        AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE',
      },
    );
    assert.equal(c.rootUrl, 'http://env.invalid');
    assert.equal(c.workerGroup, 'file-group');
    assert.equal(c.workerId, 'flag-id');
    assert.equal(c.capacity, 4);
    assert.deepEqual(c.allowRepos, ['http://127.0.0.1:1/']);
    assert.equal(c.s3.bucket, 'from-flag');
    assert.equal(c.s3.prefix, 'archives');
    assert.equal(c.s3.region, 'us-west-2');
    assert.deepEqual(c.limits, { retries: 2, maxFiles: 1000 });
    assert.equal(c.shutdownGraceSeconds, 60);
    assert.equal(c.once, false);
    assert.deepEqual(c.credentials, {
      clientId: 'worker/client',
      accessToken: 'secret-token-123456',
    });
    const printed = JSON.stringify(describeConfig(c));
    assert.ok(!printed.includes('secret-token-123456'));
    assert.ok(!printed.includes('aws-secret-abcdef'));
    // credentials are registered with the logger's redaction
    const lines: string[] = [];
    createLogger({ write: (l) => lines.push(l), json: true }).info('x', {
      note: 'token secret-token-123456 and aws-secret-abcdef',
    });
    assert.ok(!lines.join('').includes('secret-token-123456'));
    assert.ok(!lines.join('').includes('aws-secret-abcdef'));
  });

  it('taskcluster-proxy: root URL from TASKCLUSTER_PROXY_URL and no credentials', () => {
    const c = loadWorkerConfig(
      {
        taskQueueId: 'proj-mozharness/archive',
        workerGroup: 'g',
        workerId: 'w',
        s3Bucket: 'bucket-a',
        allowRepo: ['https://hg.mozilla.org/'],
      },
      {
        TASKCLUSTER_PROXY_URL: 'http://taskcluster/',
        TASKCLUSTER_CLIENT_ID: 'x',
        TASKCLUSTER_ACCESS_TOKEN: 'yyyyyyyy',
      },
    );
    assert.equal(c.rootUrl, 'http://taskcluster');
    assert.equal(c.credentials, undefined);
  });

  it('names every missing or wrong setting and the flag that sets it', () => {
    let err: unknown;
    try {
      loadWorkerConfig({ taskQueueId: 'no-slash', capacity: '0' }, {});
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof ArchiveError);
    assert.equal(err.code, 'invalid-config');
    assert.match(err.message, /config\.rootUrl is required \(--root-url or TASKCLUSTER_ROOT_URL/);
    assert.match(err.message, /config\.workerGroup is required \(--worker-group/);
    assert.match(err.message, /config\.s3 is required \(--s3-bucket/);
    assert.match(err.message, /config\.allowRepos is required \(--allow-repo/);
    assert.match(err.message, /config\.taskQueueId must look like <provisionerId>\/<workerType>/);
    assert.match(err.message, /config\.capacity must be >= 1/);
    assert.throws(() => loadWorkerConfig({ capacity: 'lots' }, {}), /--capacity must be a number/);
  });

  it('refuses an unreadable or non-mapping YAML file clearly', () => {
    const bad = path.join(dir, 'bad.yml');
    fs.writeFileSync(bad, '- a\n- b\n');
    assert.throws(() => loadWorkerConfig({ config: bad }, {}), /must be a YAML mapping/);
    assert.throws(
      () => loadWorkerConfig({ config: path.join(dir, 'missing.yml') }, {}),
      /cannot read worker config/,
    );
    fs.writeFileSync(bad, 'rootUrl: [unclosed\n');
    assert.throws(() => loadWorkerConfig({ config: bad }, {}), /not valid YAML/);
  });
});

describe('worker payload validation', () => {
  it('accepts a good payload and applies defaults', () => {
    const r = checkPayload(good, ALLOW);
    assert.ok(r.ok);
    assert.equal(r.payload.artifactName, 'public/build/mozharness.tar.gz');
    const withIndex = checkPayload({ ...good, index: { namespaces: ['a.b.c'] } }, ALLOW);
    assert.ok(withIndex.ok);
    assert.equal(withIndex.payload.index?.rank, 0);
  });

  const cases: Array<[string, unknown, RegExp]> = [
    [
      'short revision',
      { ...good, revision: 'abc123' },
      /payload\.revision must be the full 40-hex revision .*got "abc123"/,
    ],
    ['missing subdir', { ...good, subdir: undefined }, /payload\.subdir is required/],
    ['unknown field', { ...good, colour: 'red' }, /payload\.colour is not a known field/],
    ['bad digest', { ...good, treeDigest: 'xyz' }, /payload\.treeDigest must be a 64-hex sha256/],
    [
      'repo not allowed',
      { ...good, repository: 'https://evil.example/repo' },
      /payload\.repository "https:\/\/evil\.example\/repo" is not on this worker's allow-list/,
    ],
    ['subdir escaping', { ...good, subdir: 'testing/../..' }, /payload\.subdir/],
    ['test without command', { ...good, test: { env: {} } }, /payload\.test\.command is required/],
    [
      'test env not strings',
      { ...good, test: { command: ['true'], env: { A: 1 } } },
      /payload\.test\.env\.A must be string/,
    ],
    ['maxRunTime type', { ...good, maxRunTime: 'long' }, /payload\.maxRunTime must be integer/],
    [
      'reserved artifact',
      { ...good, artifactName: 'public/logs/live_backing.log' },
      /payload\.artifactName .* is reserved/,
    ],
    [
      'bad namespace',
      { ...good, index: { namespaces: ['a..b'] } },
      /payload\.index\.namespaces\[0\]/,
    ],
    ['not an object', 'hello', /payload must be object/],
  ];
  for (const [name, payload, re] of cases) {
    it(`refuses ${name} naming the field`, () => {
      const r = checkPayload(payload, ALLOW);
      assert.equal(r.ok, false);
      if (!r.ok) assert.match(r.errors.join('\n'), re);
    });
  }
});

describe('worker test command sandbox', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'worker-test-cmd-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('gives the child only the payload env plus PATH/HOME/LANG/TMPDIR', () => {
    const env = testEnvironment({ FOO: 'bar' }, path.join(dir, 's1'), {
      PATH: '/bin',
      AWS_SECRET_ACCESS_KEY: 'x',
      TASKCLUSTER_ACCESS_TOKEN: 'y',
      HOME: '/root',
    });
    assert.deepEqual(Object.keys(env).sort(), ['FOO', 'HOME', 'LANG', 'PATH', 'TMPDIR']);
    assert.notEqual(env.HOME, '/root');
  });

  it('streams output into the task log, reports exit status and enforces the time limit', async () => {
    process.env.WORKER_TEST_SECRET_CANARY = 'canary-should-not-leak';
    try {
      const log = new TaskLog(path.join(dir, 'log.txt'), silentLogger);
      const ok = await runTestCommand({
        command: [
          'sh',
          '-c',
          'echo hello; echo "canary=${WORKER_TEST_SECRET_CANARY:-none}"; echo "foo=$FOO"; echo oops >&2',
        ],
        cwd: dir,
        scratch: path.join(dir, 's2'),
        env: { FOO: 'bar' },
        timeoutMs: 10_000,
        log,
      });
      assert.equal(ok.ok, true);
      const bad = await runTestCommand({
        command: ['sh', '-c', 'exit 3'],
        cwd: dir,
        scratch: path.join(dir, 's3'),
        timeoutMs: 10_000,
        log,
      });
      assert.equal(bad.ok, false);
      assert.match(bad.reason!, /exited with status 3/);
      const slow = await runTestCommand({
        command: ['sh', '-c', 'sleep 30 & sleep 30'],
        cwd: dir,
        scratch: path.join(dir, 's4'),
        timeoutMs: 300,
        log,
      });
      assert.equal(slow.timedOut, true);
      assert.match(slow.reason!, /exceeded its time limit/);
      const text = fs.readFileSync(log.file, 'utf8');
      assert.match(text, /^\[\d{4}-\d\d-\d\dT[^\]]+\] OUT {3}hello$/m);
      assert.match(text, /ERR {3}oops/);
      assert.match(text, /canary=none/);
      assert.match(text, /foo=bar/);
    } finally {
      delete process.env.WORKER_TEST_SECRET_CANARY;
    }
  });
});

describe('worker CLI configuration', function () {
  this.timeout(60_000);
  const cli = (args: string[], env: Record<string, string>) =>
    spawnCli(args, {
      PATH: process.env.PATH ?? '',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ...env,
    });

  it('worker --print-config: flags win, secrets redacted; a bad configuration exits 1 naming each problem', async () => {
    const env = {
      TASKCLUSTER_ROOT_URL: 'http://127.0.0.1:1',
      TASKCLUSTER_CLIENT_ID: 'worker/cli',
      TASKCLUSTER_ACCESS_TOKEN: 'cli-secret-token-xyz',
      AWS_SECRET_ACCESS_KEY: 'cli-aws-secret-xyz',
    };
    const ok = await cli(
      [
        'worker',
        '--print-config',
        '--task-queue-id',
        'proj-mozharness/archive',
        '--worker-group',
        'g',
        '--worker-id',
        'w',
        '--s3-bucket',
        'bucket-b',
        '--allow-repo',
        'https://hg.mozilla.org/',
        '--allow-repo',
        'https://github.com/mozilla/',
        '--capacity',
        '3',
        '--shutdown-grace',
        '5',
      ],
      env,
    );
    assert.equal(ok.code, 0, ok.stderr);
    const printed = JSON.parse(ok.stdout);
    assert.equal(printed.capacity, 3);
    assert.equal(printed.shutdownGraceSeconds, 5);
    assert.deepEqual(printed.allowRepos, [
      'https://hg.mozilla.org/',
      'https://github.com/mozilla/',
    ]);
    assert.ok(
      !ok.stdout.includes('cli-secret-token-xyz') && !ok.stdout.includes('cli-aws-secret-xyz'),
    );
    const bad = await cli(['worker', '--task-queue-id', 'nope'], env);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /invalid worker configuration/);
    assert.match(bad.stderr, /config\.taskQueueId must look like/);
    assert.match(bad.stderr, /config\.allowRepos is required \(--allow-repo/);
    assert.ok(!bad.stderr.includes('cli-secret-token-xyz'));
  });
});
