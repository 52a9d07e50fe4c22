// Chain of trust: the worker signs public/chain-of-trust.json (generic-worker's format and key
// file) for a completed archive task; verify-cot checks the signature, each artifact's sha256
// and a downstream task's MOZHARNESS_SHA256, and names the first broken link.
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { spawnCli } from './helpers/cli.js';
import { startWorkerEnv, type WorkerEnv } from './helpers/worker-env.js';
import {
  httpArtifactReader,
  publicKeyBase64,
  readPublicKey,
  readSigningKey,
  verifyChain,
} from '../src/worker/cot.js';
import { runWorker, taskLogKey } from '../src/worker/index.js';

/** A key file as generic-worker's new-ed25519-keypair writes it: the base64 of the seed. */
function writeKeyFile(file: string): string {
  const { privateKey } = generateKeyPairSync('ed25519');
  const der = privateKey.export({ format: 'der', type: 'pkcs8' });
  fs.writeFileSync(file, der.subarray(der.length - 32).toString('base64'), { mode: 0o600 });
  return publicKeyBase64(readSigningKey(file));
}

describe('worker: chain of trust', function () {
  this.timeout(120_000);
  let env: WorkerEnv;
  let keyFile: string;
  let publicKey: string;
  let otherKey: string;
  let taskId: string;
  let sha256: string;

  before(async () => {
    env = await startWorkerEnv({ variants: [undefined] });
    keyFile = path.join(env.dir, 'cot.key');
    publicKey = writeKeyFile(keyFile);
    otherKey = writeKeyFile(path.join(env.dir, 'other.key'));
  });
  after(async () => {
    await env?.close();
  });

  const verifyWith = (key: string, id: string) =>
    verifyChain(id, {
      publicKeys: [readPublicKey(key)],
      reader: httpArtifactReader(env.embedded.rootUrl, env.root),
    });

  it('a completed task publishes chain-of-trust.json and its signature; the chain verifies (CLI too)', async () => {
    const q = 'cot';
    taskId = await env.createTask(q, { repository: env.hg.url, revision: env.repo.revisions[0] });
    const summary = await env.runOnce(q, { chainOfTrustSigningKey: keyFile });
    assert.equal(summary.completed, 1, JSON.stringify(summary.results));
    sha256 = summary.results[0]!.archive!.sha256;
    const base = `${env.embedded.rootUrl}/api/queue/v1/task/${taskId}/artifacts/`;
    const doc: any = await (
      await fetch(base + encodeURIComponent('public/chain-of-trust.json'))
    ).json();
    assert.equal(doc.chainOfTrustVersion, 1);
    assert.equal(doc.taskId, taskId);
    assert.equal(doc.runId, 0);
    assert.equal(doc.workerGroup, 'tests');
    assert.deepEqual(doc.task, await env.root.task(taskId));
    assert.deepEqual(Object.keys(doc.artifacts).sort(), [
      'public/build/mozharness.json',
      'public/build/mozharness.tar.gz',
      'public/build/mozharness.zip',
      'public/logs/live_backing.log',
    ]);
    assert.equal(doc.artifacts['public/build/mozharness.tar.gz'].sha256, sha256);
    const sig = Buffer.from(
      await (
        await fetch(base + encodeURIComponent('public/chain-of-trust.json.sig'))
      ).arrayBuffer(),
    );
    assert.equal(sig.length, 64);

    const r = await verifyWith(publicKey, taskId);
    assert.ok(r.ok, r.broken);
    assert.equal(r.checked.length, 5);

    const cli = await spawnCli(['verify-cot', taskId, '--public-key', publicKey], {
      PATH: process.env.PATH,
      TASKCLUSTER_ROOT_URL: env.embedded.rootUrl,
      TASKCLUSTER_CLIENT_ID: env.embedded.credentials.clientId,
      TASKCLUSTER_ACCESS_TOKEN: env.embedded.credentials.accessToken,
    });
    assert.equal(cli.code, 0, cli.stderr + cli.stdout);
    assert.match(cli.stdout, new RegExp(`chain of trust of ${taskId}: verified`));
  });

  it('a missing or unreadable signing key is a configuration error', async () => {
    await assert.rejects(
      runWorker(
        env.config('cot-nokey', { chainOfTrustSigningKey: path.join(env.dir, 'missing.key') }),
        env.deps(),
      ),
      /cannot read the chain-of-trust signing key .*missing\.key/,
    );
    const bad = path.join(env.dir, 'bad.key');
    fs.writeFileSync(bad, 'not a key');
    await assert.rejects(
      runWorker(env.config('cot-badkey', { chainOfTrustSigningKey: bad }), env.deps()),
      /must be the base64 of a 32-byte ed25519 key/,
    );
  });

  it('wrong key: the signature link is broken', async () => {
    const r = await verifyWith(otherKey, taskId);
    assert.equal(r.ok, false);
    assert.match(r.broken!, /signature public\/chain-of-trust\.json\.sig .* does not verify/);
  });

  it("a downstream task's MOZHARNESS_SHA256 is checked against the upstream chain of trust", async () => {
    const url = `${env.embedded.rootUrl}/api/queue/v1/task/${taskId}/artifacts/public/build/mozharness.tar.gz`;
    const downstream = async (expected: string) =>
      env.createTask(
        'cot-downstream',
        { env: { MOZHARNESS_URL: url, MOZHARNESS_SHA256: expected } },
        { dependencies: [taskId] },
      );
    const good = await verifyWith(publicKey, await downstream(sha256));
    assert.ok(good.ok, good.broken);
    const wrong = 'd'.repeat(64);
    const badId = await downstream(wrong);
    const bad = await verifyWith(publicKey, badId);
    assert.equal(bad.ok, false);
    assert.ok(
      bad.broken!.includes(wrong) && bad.broken!.includes(sha256) && bad.broken!.includes(badId),
      bad.broken,
    );
  });

  it('tampered artifact, then tampered chain-of-trust document: each is the link named', async () => {
    const s3 = env.s3.client();
    const put = (key: string, body: string) =>
      s3.send(new PutObjectCommand({ Bucket: env.s3.bucket, Key: key, Body: body }));
    await put(taskLogKey(env.s3Settings, taskId, 0), 'a different log\n');
    const tampered = await verifyWith(publicKey, taskId);
    assert.equal(tampered.ok, false);
    const forged = createHash('sha256').update('a different log\n').digest('hex');
    assert.match(
      tampered.broken!,
      new RegExp(`artifact public/logs/live_backing\\.log of task ${taskId} has sha256 ${forged}`),
    );

    const docKey = taskLogKey(env.s3Settings, taskId, 0, 'chain-of-trust.json');
    const doc = await (await fetch(`${env.s3.publicBaseUrl}/${docKey}`)).text();
    await put(docKey, doc.replace(/"sha256": "[0-9a-f]{64}"/, `"sha256": "${forged}"`));
    const forgedDoc = await verifyWith(publicKey, taskId);
    assert.equal(forgedDoc.ok, false);
    assert.match(forgedDoc.broken!, /signature .* does not verify/);
  });
});
