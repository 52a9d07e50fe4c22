// Hostile request bodies against every embedded service, unauthenticated and with credentials:
// deep nesting (1,000 to 5,000 levels and unclosed), bodies that are not application/json and
// JSON that does not parse all answer 400 MalformedPayload in the upstream error format, before
// any scope or schema work, and the services keep serving normal requests afterwards.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startEmbedded, type Embedded } from '../src/local/embedded.js';
import { makeClients, slugid } from '../src/taskcluster/client.js';
import { MAX_JSON_DEPTH, jsonNestingDepth } from '../src/local/request-body.js';

const deepArrays = (n: number) => '['.repeat(n) + ']'.repeat(n);
const deepObjects = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);

const HOSTILE: Array<[string, string]> = [
  ['1,000 nested arrays', deepArrays(1000)],
  ['5,000 nested objects', deepObjects(5000)],
  ['50,000 unclosed arrays', '['.repeat(50_000)],
  ['deep under a top-level object', `{"payload":${deepArrays(3000)}}`],
];

describe('embedded services: hostile request bodies', function () {
  let dir: string;
  let e: Embedded;
  let targets: Array<{ service: string; method: string; url: string }>;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'local-hostile-'));
    e = await startEmbedded({ stateDir: dir, sweepIntervalMs: 0, s3: false });
    const taskId = slugid();
    const api = `${e.rootUrl}/api`;
    targets = [
      { service: 'queue', method: 'PUT', url: `${api}/queue/v1/task/${taskId}` },
      { service: 'queue', method: 'POST', url: `${api}/queue/v1/claim-work/proj-x%2Fw` },
      { service: 'queue', method: 'POST', url: `${api}/queue/v1/task/${taskId}/runs/0/completed` },
      { service: 'index', method: 'PUT', url: `${api}/index/v1/task/a.b.c` },
      { service: 'hooks', method: 'PUT', url: `${api}/hooks/v1/hooks/g/h` },
      { service: 'hooks', method: 'POST', url: `${api}/hooks/v1/hooks/g/h/trigger` },
      { service: 'auth', method: 'PUT', url: `${api}/auth/v1/clients/project%2Fx` },
      { service: 'auth', method: 'POST', url: `${api}/auth/v1/scopes/expand` },
    ];
  });

  after(async () => {
    await e.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('counts nesting iteratively, ignoring brackets inside strings', () => {
    assert.equal(jsonNestingDepth('{"a":[1,{"b":[]}]}'), 4);
    assert.equal(jsonNestingDepth('["[[[[\\"[[[", "\\\\", []]'), 2);
    assert.equal(jsonNestingDepth('['.repeat(1_000_000)), MAX_JSON_DEPTH + 1);
  });

  for (const [what, text] of HOSTILE) {
    it(`${what}: 400 MalformedPayload from every service, with or without credentials`, async () => {
      const { makeHeader } = await signer(e);
      for (const t of targets) {
        for (const signed of [false, true]) {
          const res = await fetch(t.url, {
            method: t.method,
            body: text,
            headers: {
              'content-type': 'application/json',
              ...(signed ? { authorization: makeHeader(t.url, t.method) } : {}),
            },
          });
          const label = `${t.service} ${t.method} ${t.url} signed=${signed}`;
          assert.equal(res.status, 400, label);
          assert.match(res.headers.get('content-type') ?? '', /^application\/json/, label);
          const body = (await res.json()) as any;
          assert.equal(body.code, 'MalformedPayload', label);
          assert.match(body.message, new RegExp(`nested more than ${MAX_JSON_DEPTH} levels`));
          assert.deepEqual(Object.keys(body.requestInfo).sort(), [
            'method',
            'params',
            'payload',
            'time',
          ]);
          assert.deepEqual(body.requestInfo.payload, {});
        }
      }
    });
  }

  it('refuses text/plain and unparsable JSON on every service as upstream does', async () => {
    for (const t of targets.filter((x) => !x.url.endsWith('/completed'))) {
      const plain = await fetch(t.url, {
        method: t.method,
        body: '{}',
        headers: { 'content-type': 'text/plain' },
      });
      assert.equal(plain.status, 400, t.url);
      const p = (await plain.json()) as any;
      assert.equal(p.code, 'MalformedPayload');
      assert.match(p.message, /^Payload must be JSON with content-type: application\/json got/);
      const broken = await fetch(t.url, {
        method: t.method,
        body: '{"a": [1, 2',
        headers: { 'content-type': 'application/json' },
      });
      assert.equal(broken.status, 400, t.url);
      const b = (await broken.json()) as any;
      assert.equal(b.code, 'MalformedPayload');
      assert.match(b.message, /^Failed to parse JSON: /);
      assert.equal(b.requestInfo.payload, '{"a": [1, 2');
    }
  });

  it('keeps serving normal requests afterwards', async () => {
    const root = makeClients({ rootUrl: e.rootUrl, credentials: e.credentials, retries: 0 });
    const taskId = slugid();
    const expires = new Date(Date.now() + 3600e3).toISOString();
    await root.index.insertTask('hostile.after', { taskId, rank: 1, data: {}, expires });
    assert.equal((await root.index.findTask('hostile.after')).taskId, taskId);
    const expanded = await root.auth.expandScopes({ scopes: ['queue:get-task:x'] });
    assert.deepEqual(expanded.scopes, ['queue:get-task:x']);
    // a legitimately nested body still passes the depth check (the schema decides the rest)
    const nested = JSON.parse(deepArrays(MAX_JSON_DEPTH - 2));
    await root.index.insertTask('hostile.nested', {
      taskId,
      rank: 1,
      data: { nested },
      expires,
    });
  });
});

/** A Hawk header signer with the deployment's root credentials. */
async function signer(e: Embedded) {
  const { default: hawk } = await import('hawk');
  return {
    makeHeader: (url: string, method: string) =>
      hawk.client.header(url, method, {
        credentials: {
          id: e.credentials.clientId,
          key: e.credentials.accessToken,
          algorithm: 'sha256',
        },
      }).header,
  };
}
