// Authentication and scopes of the embedded services with the real taskcluster-client over HTTP:
// Hawk keys, temporary credentials (certificates), authorizedScopes, bewit signed URLs, roles,
// anonymous access, and the auth service methods.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import hawk from 'hawk';
import taskcluster from 'taskcluster-client';
import { startEmbedded, type Embedded } from '../src/local/embedded.js';
import { ManualClock } from '../src/local/framework.js';
import { makeClients, slugid, type Clients, type Credentials } from '../src/taskcluster/client.js';
import { assertUpstream, upstreamMethodSchema } from './helpers/upstream.js';

/** The untyped client library, as the tests call methods the typed wrapper does not declare. */
const tc = taskcluster as any;

const HOUR = 3600e3;

describe('embedded services: authentication and scopes', function () {
  let dir: string;
  let e: Embedded;
  let clock: ManualClock;
  let root: Clients;

  const clients = (credentials?: Credentials, authorizedScopes?: string[]): Clients =>
    makeClients({
      rootUrl: e.rootUrl,
      retries: 0,
      ...(credentials ? { credentials } : {}),
      ...(authorizedScopes ? { authorizedScopes } : {}),
    });

  const entry = (rank = 0) => ({
    taskId: slugid(),
    rank,
    data: {},
    expires: new Date(clock.now().getTime() + HOUR).toISOString(),
  });

  const status = (code: number, errCode?: string) => (err: any) => {
    assert.equal(err.statusCode, code, err.message);
    if (errCode) assert.equal(err.code, errCode);
    return true;
  };

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'local-auth-'));
    clock = new ManualClock(new Date());
    e = await startEmbedded({ stateDir: dir, s3: false, clock, sweepIntervalMs: 0 });
    root = clients(e.credentials);
  });

  after(async () => {
    await e.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('accepts the root credentials (scope *)', async () => {
    const out = await root.auth.currentScopes();
    assertUpstream(upstreamMethodSchema('auth', 'currentScopes', 'output')!, out);
    assert.deepEqual(out.scopes, ['*']);
  });

  it('refuses a wrong Hawk key and an unknown client with 401 and www-authenticate: hawk', async () => {
    const wrong = clients({ clientId: e.credentials.clientId, accessToken: 'not-the-right-key' });
    await assert.rejects(wrong.auth.currentScopes(), status(401, 'AuthenticationFailed'));
    const unknown = clients({ clientId: 'nobody', accessToken: 'whatever-token' });
    await assert.rejects(unknown.index.findTask('a.b'), status(401, 'AuthenticationFailed'));

    const url = `${e.rootUrl}/api/auth/v1/scopes/current`;
    const { header } = hawk.client.header(url, 'GET', {
      credentials: { id: e.credentials.clientId, key: 'wrong', algorithm: 'sha256' },
    });
    const res = await fetch(url, { headers: { authorization: header } });
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), 'hawk');
    const body: any = await res.json();
    assert.equal(body.code, 'AuthenticationFailed');
    assert.doesNotMatch(JSON.stringify(body), new RegExp(e.credentials.accessToken));
  });

  it('checks a Hawk payload hash when the client sends one', async () => {
    const url = `${e.rootUrl}/api/auth/v1/scopes/expand`;
    const body = JSON.stringify({ scopes: ['assume:anonymous'] });
    const sign = (payload: string) =>
      hawk.client.header(url, 'POST', {
        credentials: {
          id: e.credentials.clientId,
          key: e.credentials.accessToken,
          algorithm: 'sha256',
        },
        payload,
        contentType: 'application/json',
      }).header;
    const ok = await fetch(url, {
      method: 'POST',
      body,
      headers: { authorization: sign(body), 'content-type': 'application/json' },
    });
    assert.equal(ok.status, 200);
    const tampered = await fetch(url, {
      method: 'POST',
      body: JSON.stringify({ scopes: ['*'] }),
      headers: { authorization: sign(body), 'content-type': 'application/json' },
    });
    assert.equal(tampered.status, 401);
  });

  it('limits a configured client to its scopes: 403 naming the missing scope', async () => {
    const creds = e.createClient('project/limited', [
      'auth:current-scopes',
      'index:insert-task:proj.a.*',
    ]);
    const c = clients(creds);
    const req = entry();
    assertUpstream(upstreamMethodSchema('index', 'insertTask', 'input')!, req);
    const out = await c.index.insertTask('proj.a.b', req);
    assertUpstream(upstreamMethodSchema('index', 'insertTask', 'output')!, out);
    await assert.rejects(c.index.insertTask('proj.b.c', entry()), (err: any) => {
      assert.equal(err.statusCode, 403);
      assert.equal(err.code, 'InsufficientScopes');
      assert.match(err.message, /index:insert-task:proj\.b\.c/);
      return true;
    });
  });

  it('verifies temporary credentials (certificates) and limits them to their scopes', async () => {
    const issuer = e.createClient('project/issuer', [
      'auth:current-scopes',
      'index:insert-task:proj.*',
      'auth:create-client:project/issuer/*',
    ]);
    const now = clock.now();
    const temp = tc.createTemporaryCredentials({
      start: now,
      expiry: new Date(now.getTime() + HOUR),
      scopes: ['auth:current-scopes', 'index:insert-task:proj.temp.*'],
      credentials: issuer,
    });
    const c = clients(temp);
    const scopes = (await c.auth.currentScopes()).scopes;
    assert.ok(scopes.includes('index:insert-task:proj.temp.*'));
    assert.ok(!scopes.includes('index:insert-task:proj.*'));
    await c.index.insertTask('proj.temp.x', entry());
    await assert.rejects(
      c.index.insertTask('proj.other.x', entry()),
      status(403, 'InsufficientScopes'),
    );

    // named temporary credentials need auth:create-client:<name> of the issuer
    const named = tc.createTemporaryCredentials({
      clientId: 'project/issuer/worker-1',
      start: now,
      expiry: new Date(now.getTime() + HOUR),
      scopes: ['auth:current-scopes'],
      credentials: issuer,
    });
    assert.deepEqual(
      (await clients(named).auth.currentScopes()).scopes.includes('auth:current-scopes'),
      true,
    );
    const badName = tc.createTemporaryCredentials({
      clientId: 'someone-else',
      start: now,
      expiry: new Date(now.getTime() + HOUR),
      scopes: ['auth:current-scopes'],
      credentials: issuer,
    });
    await assert.rejects(clients(badName).auth.currentScopes(), status(401));

    // scopes beyond the issuer's
    const greedy = tc.createTemporaryCredentials({
      start: now,
      expiry: new Date(now.getTime() + HOUR),
      scopes: ['index:insert-task:elsewhere.*'],
      credentials: issuer,
    });
    await assert.rejects(clients(greedy).index.insertTask('elsewhere.x', entry()), status(401));

    // a tampered certificate
    const cert = JSON.parse(temp.certificate as string);
    cert.scopes = ['auth:current-scopes', 'index:insert-task:proj.*'];
    await assert.rejects(
      clients({ ...temp, certificate: JSON.stringify(cert) }).auth.currentScopes(),
      status(401),
    );

    // expiry follows the services' clock (5 minutes of slack, as upstream)
    clock.advance(HOUR + 6 * 60e3);
    try {
      await assert.rejects(c.auth.currentScopes(), (err: any) => {
        assert.equal(err.statusCode, 401);
        assert.match(err.message, /expired/);
        return true;
      });
    } finally {
      clock.set(now);
    }
  });

  it('issues task credentials signed by the embedded queue issuer', async () => {
    const now = clock.now();
    const creds = e.auth.issueCredentials({
      clientId: 'task-client/abc/0/on/g/w/until/1',
      scopes: ['auth:current-scopes', 'index:insert-task:issued.*'],
      start: now,
      expiry: new Date(now.getTime() + 20 * 60e3),
    });
    assert.equal(creds.clientId, 'task-client/abc/0/on/g/w/until/1');
    assert.equal(typeof creds.certificate, 'string');
    const c = clients(creds);
    await c.index.insertTask('issued.a', entry());
    await assert.rejects(c.index.insertTask('other.a', entry()), status(403));
  });

  it('restricts requests to authorizedScopes', async () => {
    const r = clients(e.credentials, ['auth:current-scopes', 'index:insert-task:auth.only.*']);
    const scopes = (await r.auth.currentScopes()).scopes;
    assert.ok(scopes.includes('index:insert-task:auth.only.*'));
    assert.ok(!scopes.includes('*'));
    await r.index.insertTask('auth.only.x', entry());
    await assert.rejects(
      r.index.insertTask('auth.elsewhere', entry()),
      status(403, 'InsufficientScopes'),
    );
    // authorizedScopes beyond the client's own scopes are refused
    const limited = e.createClient('project/small', ['auth:current-scopes']);
    await assert.rejects(
      clients(limited, ['index:insert-task:*']).auth.currentScopes(),
      status(401, 'AuthenticationFailed'),
    );
  });

  it('accepts bewit signed URLs for GET and refuses tampered ones', async () => {
    const limited = e.createClient('project/signer', ['auth:current-scopes']);
    const c = clients(limited);
    const url = c.auth.buildSignedUrl((c.auth as any).currentScopes);
    const res = await fetch(url);
    assert.equal(res.status, 200);
    const body: any = await res.json();
    assert.ok(body.scopes.includes('auth:current-scopes'));
    const tampered = url.replace(/bewit=([^&]+)/, (_m, b: string) => `bewit=${b.slice(0, -4)}AAAA`);
    assert.equal((await fetch(tampered)).status, 401);
  });

  it('lets unauthenticated callers read the index and nothing else', async () => {
    const anon = clients();
    await root.index.insertTask('public.read.me', entry());
    const found = await anon.index.findTask('public.read.me');
    assertUpstream(upstreamMethodSchema('index', 'findTask', 'output')!, found);
    await anon.index.listNamespaces('public', {});
    await anon.index.listTasks('public.read', {});
    // as upstream: missing scopes without credentials are a 403, not a 401
    await assert.rejects(
      anon.index.insertTask('public.read.you', entry()),
      status(403, 'InsufficientScopes'),
    );
    await assert.rejects(anon.auth.currentScopes(), status(403, 'InsufficientScopes'));
    await assert.rejects(anon.auth.expandScopes({ scopes: [] }), status(403, 'InsufficientScopes'));
  });

  it('expands roles (also parameterized ones) and manages clients and roles over the API', async () => {
    const role = await (root.auth as any).createRole('project:mh:releng', {
      description: 'release engineers',
      scopes: ['index:insert-task:mh.*', 'assume:project:mh:reader'],
    });
    assert.equal(role.roleId, 'project:mh:releng');
    e.setRole('project:mh:reader', ['queue:get-artifact:private/*']);
    e.setRole('repo:hg.example.com/*', ['queue:route:index.mh.<..>.*']);
    const input = { scopes: ['assume:project:mh:releng', 'assume:repo:hg.example.com/try'] };
    assertUpstream(upstreamMethodSchema('auth', 'expandScopes', 'input')!, input);
    const out = await root.auth.expandScopes(input);
    assertUpstream(upstreamMethodSchema('auth', 'expandScopes', 'output')!, out);
    for (const s of [
      'index:insert-task:mh.*',
      'queue:get-artifact:private/*',
      'queue:route:index.mh.try.*',
      'assume:project:mh:releng',
    ]) {
      assert.ok(out.scopes.includes(s), `${s} in ${JSON.stringify(out.scopes)}`);
    }
    const creds = e.createClient('project/mh/dev', ['assume:project:mh:releng']);
    await clients(creds).index.insertTask('mh.x', entry());

    const created = await (root.auth as any).createClient('project/mh/bot', {
      description: 'a bot',
      expires: new Date(clock.now().getTime() + HOUR).toISOString(),
      scopes: ['auth:current-scopes'],
    });
    assert.equal(typeof created.accessToken, 'string');
    const info = await (root.auth as any).client('project/mh/bot');
    assert.equal(info.accessToken, undefined);
    assert.deepEqual(info.scopes, ['auth:current-scopes']);
    const bot = clients({ clientId: 'project/mh/bot', accessToken: created.accessToken });
    assert.ok((await bot.auth.currentScopes()).scopes.includes('auth:current-scopes'));
    await assert.rejects(
      (bot.auth as any).createClient('project/mh/bot2', {
        description: '',
        expires: new Date().toISOString(),
        scopes: [],
      }),
      status(403, 'InsufficientScopes'),
    );
  });
});
