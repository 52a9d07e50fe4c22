// The Taskcluster deployment an integration test runs against: the project's embedded services
// (default), or the real Taskcluster services (v106, ../shared/real-taskcluster) when
// MOZHARNESS_TEST_BACKEND=real. Tests in test/integration/ use only this interface, so the same
// file proves both.
//
//   const backend = await startBackend();
//   const worker = await backend.clientWithScopes(['queue:claim-work:proj-mozharness/x'], 'worker');
//   await backend.setRole('repo:example.com/tree:branch:default', [...]);
//   await backend.close();      // deletes every client and role it made (real), stops embedded
//
// The real deployment is shared (other test runs, other developers): everything a test creates
// there carries a unique name (`backend.unique()`), clients get narrow scopes and expire within a
// day, and roles and clients are deleted on close.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tc from 'taskcluster-client';
import type { Embedded, EmbeddedOptions } from '../../src/local/embedded.js';
import type { Credentials } from '../../src/taskcluster/client.js';
import { PROJECT_ROOT } from './cli.js';

export type BackendKind = 'embedded' | 'real';

export interface Backend {
  kind: BackendKind;
  /** http://127.0.0.1:<port>, no trailing slash. */
  rootUrl: string;
  /** Credentials with scope `*`. */
  root: { clientId: string; accessToken: string };
  /** A new client with exactly these scopes (plus what `assume:anonymous` gives everyone). */
  clientWithScopes(
    scopes: string[],
    name?: string,
  ): Promise<{ clientId: string; accessToken: string }>;
  /** Create or replace a role; removed again on close (real). */
  setRole(roleId: string, scopes: string[]): Promise<void>;
  /**
   * A name no other test run uses: lowercase letters, digits and '-', starting with `prefix`
   * (valid as a workerType, a hookId, an index namespace segment and a schedulerId).
   */
  unique(prefix: string): string;
  /** The embedded services themselves (embedded backend only). */
  embedded?: Embedded;
  close(): Promise<void>;
}

export function backendKind(env: NodeJS.ProcessEnv = process.env): BackendKind {
  const v = env.MOZHARNESS_TEST_BACKEND ?? 'embedded';
  if (v !== 'embedded' && v !== 'real') {
    throw new Error(
      `MOZHARNESS_TEST_BACKEND must be "embedded" or "real", not ${JSON.stringify(v)}`,
    );
  }
  return v;
}

/** Where up.sh keeps its state (same default as up.sh). */
export function realTaskclusterBase(env: NodeJS.ProcessEnv = process.env): string {
  if (env.REALTC_BASE) return env.REALTC_BASE;
  const cache = env.XDG_CACHE_HOME || path.join(env.HOME || os.homedir(), '.cache');
  return path.join(cache, 'real-taskcluster');
}

/** ../shared/real-taskcluster beside the checkout (CI), or under $MOZHARNESS_ARCHIVE_SHARED. */
export const REAL_TASKCLUSTER_DIR = path.join(
  process.env.MOZHARNESS_ARCHIVE_SHARED ?? path.resolve(PROJECT_ROOT, '..', 'shared'),
  'real-taskcluster',
);

/** Parse up.sh's env file (KEY=value lines, shell- and dotenv-compatible). */
export function readEnvFile(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    let value = m[2]!.trim();
    if (/^(['"]).*\1$/.test(value)) value = value.slice(1, -1);
    out[m[1]!] = value;
  }
  return out;
}

/**
 * The `anonymous` role of a public deployment (firefox-ci; upstream's
 * ui/docs/manual/deploying/anonymous-role.mdx), which ../shared/real-taskcluster/up.sh gives the
 * real services. The embedded services start with a narrower role (artifact and index reads
 * only); the embedded backend gets this one so both answer anonymous reads alike.
 */
export const PUBLIC_ANONYMOUS_SCOPES = [
  'auth:current-scopes',
  'auth:expand-scopes',
  'auth:get-client:*',
  'auth:get-role:*',
  'auth:list-clients',
  'auth:list-roles',
  'hooks:get:*',
  'hooks:list-hooks:*',
  'hooks:list-last-fires:*',
  'hooks:status:*',
  'index:find-task:*',
  'index:list-namespaces:*',
  'index:list-tasks:*',
  'queue:get-artifact:public/*',
  'queue:get-provisioner:*',
  'queue:get-task:*',
  'queue:get-worker-type:*',
  'queue:get-worker:*',
  'queue:list-artifacts:*',
  'queue:list-dependent-tasks:*',
  'queue:list-provisioners',
  'queue:list-task-group:*',
  'queue:list-worker-types:*',
  'queue:list-workers:*',
  'queue:pending-count:*',
  'queue:status:*',
  'worker-manager:get-worker-pool:*',
  'worker-manager:get-worker:*',
  'worker-manager:list-providers',
  'worker-manager:list-worker-pool-errors:*',
  'worker-manager:list-worker-pools',
  'worker-manager:list-workers:*',
  'worker-manager:should-worker-terminate:*',
];

let counter = 0;
function uniqueName(prefix: string): string {
  const rand = Math.random().toString(36).slice(2, 8).padEnd(6, '0');
  return `${prefix}-${process.pid.toString(36)}${rand}${(counter++).toString(36)}`;
}

async function loadEmbedded(): Promise<typeof import('../../src/local/embedded.js')> {
  // A dynamic specifier keeps embedded.ts in the ESM graph under mocha + tsx (see worker-env.ts).
  const specifier = '../../src/local/embedded.js';
  return (await import(specifier)) as typeof import('../../src/local/embedded.js');
}

interface AuthApi {
  createClient(clientId: string, body: Record<string, unknown>): Promise<{ accessToken: string }>;
  deleteClient(clientId: string): Promise<void>;
  createRole(roleId: string, body: Record<string, unknown>): Promise<unknown>;
  updateRole(roleId: string, body: Record<string, unknown>): Promise<unknown>;
  deleteRole(roleId: string): Promise<void>;
}

/** Clients and roles through the auth service's API (the same calls on both backends). */
function authHelpers(rootUrl: string, root: Credentials, kind: BackendKind) {
  const auth = new tc.Auth({ rootUrl, credentials: root, retries: 2 }) as AuthApi;
  const clients: string[] = [];
  const roles: string[] = [];
  return {
    async clientWithScopes(scopes: string[], name = 'client') {
      const clientId = `mozharness-tests/${kind}/${uniqueName(name)}`;
      const expires = new Date(Date.now() + 24 * 3600e3).toISOString();
      const r = await auth.createClient(clientId, {
        expires,
        description: 'mozharness-archive integration test client',
        scopes,
        deleteOnExpiration: true,
      });
      clients.push(clientId);
      return { clientId, accessToken: r.accessToken };
    },
    async setRole(roleId: string, scopes: string[]) {
      const body = { description: 'mozharness-archive integration test role', scopes };
      try {
        await auth.createRole(roleId, body);
      } catch (e: any) {
        if (e?.statusCode !== 409) throw e;
        await auth.updateRole(roleId, body);
      }
      if (!roles.includes(roleId)) roles.push(roleId);
    },
    async cleanup() {
      for (const roleId of roles.splice(0)) await auth.deleteRole(roleId).catch(() => {});
      for (const clientId of clients.splice(0)) await auth.deleteClient(clientId).catch(() => {});
    },
  };
}

export interface StartBackendOptions {
  /** Options for the embedded services (ignored for the real backend). */
  embedded?: Partial<EmbeddedOptions>;
}

/** Start (embedded) or connect to (real) the deployment the integration tests run against. */
export async function startBackend(opts: StartBackendOptions = {}): Promise<Backend> {
  const kind = backendKind();
  if (kind === 'real') return connectReal();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'backend-'));
  const { startEmbedded } = await loadEmbedded();
  let embedded: Embedded;
  try {
    embedded = await startEmbedded({
      stateDir: path.join(dir, 'state'),
      port: 0,
      s3: false,
      ...opts.embedded,
    });
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const helpers = authHelpers(embedded.rootUrl, embedded.credentials, 'embedded');
  embedded.setRole('anonymous', PUBLIC_ANONYMOUS_SCOPES);
  return {
    kind,
    rootUrl: embedded.rootUrl,
    root: embedded.credentials,
    clientWithScopes: helpers.clientWithScopes,
    setRole: helpers.setRole,
    unique: uniqueName,
    embedded,
    async close() {
      await embedded.close().catch(() => {});
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function connectReal(): Promise<Backend> {
  const file = path.join(realTaskclusterBase(), 'env');
  if (!fs.existsSync(file)) {
    throw new Error(
      `MOZHARNESS_TEST_BACKEND=real but ${file} does not exist: start the real services with ` +
        `bash ${path.join(REAL_TASKCLUSTER_DIR, 'up.sh')} (or npm run test:real)`,
    );
  }
  const env = readEnvFile(file);
  const rootUrl = env.TASKCLUSTER_ROOT_URL?.replace(/\/$/, '');
  const clientId = env.TASKCLUSTER_CLIENT_ID;
  const accessToken = env.TASKCLUSTER_ACCESS_TOKEN;
  if (!rootUrl || !clientId || !accessToken) {
    throw new Error(`${file} lacks TASKCLUSTER_ROOT_URL, TASKCLUSTER_CLIENT_ID or _ACCESS_TOKEN`);
  }
  const ping = await fetch(`${rootUrl}/api/queue/v1/ping`).catch((e: unknown) => e);
  if (!(ping instanceof Response) || !ping.ok) {
    throw new Error(
      `the real Taskcluster services at ${rootUrl} do not answer (${ping instanceof Response ? ping.status : String(ping)}): ` +
        `run bash ${path.join(REAL_TASKCLUSTER_DIR, 'up.sh')}`,
    );
  }
  const root = { clientId, accessToken };
  const helpers = authHelpers(rootUrl, root, 'real');
  return {
    kind: 'real',
    rootUrl,
    root,
    clientWithScopes: helpers.clientWithScopes,
    setRole: helpers.setRole,
    unique: uniqueName,
    close: helpers.cleanup,
  };
}
