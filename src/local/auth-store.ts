// The embedded auth service's clients, as upstream's auth service keeps them: the tables of
// clients and roles in the embedded database, the built-in clients created at first start, and
// the configured clients tests and `local up` create with limited scopes.
import crypto from 'node:crypto';
import { validScope } from 'taskcluster-lib-scopes';
import type { Database } from './db.js';
import { ApiError, systemClock, type Clock } from './framework.js';

/** The root client created at first start; its accessToken is random and persisted. */
const ROOT_CLIENT_ID = 'static/taskcluster/root';
/** Internal issuer of the queue's task credentials (holds `*`). */
export const QUEUE_ISSUER_CLIENT_ID = 'static/taskcluster/queue';
/** Internal client that signs index → queue artifact redirects (holds `*`). */
export const INDEX_CLIENT_ID = 'static/taskcluster/index';

/** What unauthenticated requests may do: read public artifacts and the index, nothing else. */
const DEFAULT_ANONYMOUS_SCOPES = [
  'queue:get-artifact:public/*',
  'index:find-task:*',
  'index:list-namespaces:*',
  'index:list-tasks:*',
];

export interface ClientRecord {
  clientId: string;
  accessToken: string;
  scopes: string[];
  description: string;
  created: string;
  lastModified: string;
  lastRotated: string;
  expires: string;
  disabled: boolean;
  deleteOnExpiration: boolean;
}

interface ClientRow {
  client_id: string;
  access_token: string;
  scopes: string;
  description: string;
  created: string;
  last_modified: string;
  last_rotated: string;
  expires: string;
  disabled: number;
  delete_on_expiration: number;
}

function token(): string {
  return crypto.randomBytes(33).toString('base64url'); // 44 characters, like upstream tokens
}

function farFuture(): string {
  return new Date('3000-01-01T00:00:00.000Z').toISOString();
}

/** Create the auth tables and the default clients/roles (idempotent). */
export function initAuthTables(db: Database, clock: Clock = systemClock): void {
  db.exec(`
    CREATE TABLE IF NOT EXISTS auth_clients (
      client_id TEXT PRIMARY KEY,
      access_token TEXT NOT NULL,
      scopes TEXT NOT NULL,
      description TEXT NOT NULL DEFAULT '',
      created TEXT NOT NULL,
      last_modified TEXT NOT NULL,
      last_rotated TEXT NOT NULL,
      expires TEXT NOT NULL,
      disabled INTEGER NOT NULL DEFAULT 0,
      delete_on_expiration INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE IF NOT EXISTS auth_roles (
      role_id TEXT PRIMARY KEY,
      scopes TEXT NOT NULL,
      description TEXT NOT NULL DEFAULT '',
      created TEXT NOT NULL,
      last_modified TEXT NOT NULL
    );
  `);
  const now = clock.now().toISOString();
  for (const [clientId, description] of [
    [ROOT_CLIENT_ID, 'root client of the embedded Taskcluster services'],
    [QUEUE_ISSUER_CLIENT_ID, 'issues temporary credentials for claimed runs'],
    [INDEX_CLIENT_ID, 'signs artifact redirects of the index'],
  ]) {
    db.prepare(
      `INSERT OR IGNORE INTO auth_clients
        (client_id, access_token, scopes, description, created, last_modified, last_rotated, expires)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(clientId, token(), JSON.stringify(['*']), description, now, now, now, farFuture());
  }
  db.prepare(
    `INSERT OR IGNORE INTO auth_roles (role_id, scopes, description, created, last_modified)
      VALUES ('anonymous', ?, 'scopes of every request, also unauthenticated ones', ?, ?)`,
  ).run(JSON.stringify(DEFAULT_ANONYMOUS_SCOPES), now, now);
}

function clientFromRow(r: ClientRow): ClientRecord {
  return {
    clientId: r.client_id,
    accessToken: r.access_token,
    scopes: JSON.parse(r.scopes) as string[],
    description: r.description,
    created: r.created,
    lastModified: r.last_modified,
    lastRotated: r.last_rotated,
    expires: r.expires,
    disabled: r.disabled !== 0,
    deleteOnExpiration: r.delete_on_expiration !== 0,
  };
}

export function getClient(db: Database, clientId: string): ClientRecord | undefined {
  const row = db.prepare('SELECT * FROM auth_clients WHERE client_id = ?').get(clientId) as
    ClientRow | undefined;
  return row ? clientFromRow(row) : undefined;
}

export function listClients(db: Database, prefix = ''): ClientRecord[] {
  return (
    db
      .prepare('SELECT * FROM auth_clients WHERE substr(client_id, 1, ?) = ? ORDER BY client_id')
      .all(prefix.length, prefix) as ClientRow[]
  ).map(clientFromRow);
}

export function checkScopes(scopes: unknown, what = 'scopes'): string[] {
  if (!Array.isArray(scopes) || !scopes.every((s) => typeof s === 'string' && validScope(s))) {
    throw new ApiError(
      'InputError',
      `${what} must be an array of scopes (printable ASCII strings)`,
    );
  }
  return scopes as string[];
}

/**
 * Create (or replace the scopes of) a configured client with a fresh random accessToken — for
 * tests and `local up`: clients with limited scopes. Returns the credentials.
 */
export function createClient(
  db: Database,
  clientId: string,
  scopes: string[],
  opts: { description?: string; expires?: Date; clock?: Clock } = {},
): { clientId: string; accessToken: string } {
  if (!/^[A-Za-z0-9!@/:.+|_-]+$/.test(clientId)) {
    throw new ApiError('InvalidRequestArguments', `invalid clientId '${clientId}'`);
  }
  checkScopes(scopes);
  const now = (opts.clock ?? systemClock).now().toISOString();
  const accessToken = token();
  db.prepare(
    `INSERT INTO auth_clients
      (client_id, access_token, scopes, description, created, last_modified, last_rotated, expires)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT(client_id) DO UPDATE SET access_token = excluded.access_token,
        scopes = excluded.scopes, description = excluded.description,
        last_modified = excluded.last_modified, last_rotated = excluded.last_rotated,
        expires = excluded.expires, disabled = 0`,
  ).run(
    clientId,
    accessToken,
    JSON.stringify(scopes),
    opts.description ?? '',
    now,
    now,
    now,
    (opts.expires ?? new Date(farFuture())).toISOString(),
  );
  return { clientId, accessToken };
}

/** The persisted root credentials (holding `*`). */
export function rootCredentials(db: Database): { clientId: string; accessToken: string } {
  const c = getClient(db, ROOT_CLIENT_ID);
  if (!c) throw new Error('the embedded database has no root client (initAuthTables not run)');
  return { clientId: c.clientId, accessToken: c.accessToken };
}
