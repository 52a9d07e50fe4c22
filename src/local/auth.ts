// Authentication and authorization of the embedded Taskcluster services, as upstream's auth
// service does it (services/auth/src/signaturevalidator.js): Hawk-signed requests and `bewit`
// signed URLs, configured clients and roles in the embedded database, temporary credentials with
// a certificate (signed with the issuer's accessToken), `authorizedScopes` restriction, and the
// `anonymous` role merged into every request. Scope checks use taskcluster-lib-scopes.
import crypto from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { parse as legacyParse } from 'node:url';
import hawk from 'hawk';
import {
  mergeScopeSets,
  normalizeScopeSet,
  satisfiesExpression,
  validScope,
} from 'taskcluster-lib-scopes';
import type { Database } from './db.js';
import {
  ApiError,
  systemClock,
  type Clock,
  type IssueCredentials,
  type TemporaryCredentials,
} from './framework.js';

/** The root client created at first start; its accessToken is random and persisted. */
export const ROOT_CLIENT_ID = 'static/taskcluster/root';
/** Internal issuer of the queue's task credentials (holds `*`). */
export const QUEUE_ISSUER_CLIENT_ID = 'static/taskcluster/queue';
/** Internal client that signs index → queue artifact redirects (holds `*`). */
export const INDEX_CLIENT_ID = 'static/taskcluster/index';

/** What unauthenticated requests may do: read public artifacts and the index, nothing else. */
export const DEFAULT_ANONYMOUS_SCOPES = [
  'queue:get-artifact:public/*',
  'index:find-task:*',
  'index:list-namespaces:*',
  'index:list-tasks:*',
];

const CERT_MAX_LIFETIME_MS = 31 * 24 * 3600 * 1000;
const CERT_SKEW_MS = 5 * 60 * 1000;

export interface AuthResult {
  /** The client id the request authenticated as, or null for an unauthenticated request. */
  clientId: string | null;
  /** Effective scopes (certificate/authorizedScopes restricted, roles expanded, anonymous merged). */
  scopes: string[];
}

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

export interface RoleRecord {
  roleId: string;
  scopes: string[];
  description: string;
  created: string;
  lastModified: string;
}

export interface AuthProvider {
  /** Authenticate a request; throws ApiError('AuthenticationFailed') for bad credentials. */
  /** `rawBody` lets a Hawk `hash` (payload hash) be verified when the client sent one. */
  authenticate(req: IncomingMessage, rawBody?: Buffer): Promise<AuthResult>;
  /** Expand `assume:` scopes through the configured roles. */
  expandScopes(scopes: string[]): string[];
  /** Temporary credentials signed by the internal queue issuer (for claimed runs). */
  issueCredentials: IssueCredentials;
  /** A `bewit`-signed GET URL valid for `ttlSec` seconds. */
  signUrl(url: string, ttlSec?: number): string;
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

function clientFromRow(r: ClientRow): ClientRecord {
  return {
    clientId: r.client_id,
    accessToken: r.access_token,
    scopes: JSON.parse(r.scopes),
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

interface RoleRow {
  role_id: string;
  scopes: string;
  description: string;
  created: string;
  last_modified: string;
}

function roleFromRow(r: RoleRow): RoleRecord {
  return {
    roleId: r.role_id,
    scopes: JSON.parse(r.scopes),
    description: r.description,
    created: r.created,
    lastModified: r.last_modified,
  };
}

/**
 * Roles: `assume:<roleId>` grants the role's scopes, expanded recursively. A roleId ending in `*`
 * applies to every `assume:<prefix>…` scope, and `<..>` in its scopes is replaced by the part the
 * `*` matched (parameterized roles, as upstream).
 */
export class RoleStore {
  private cache: RoleRecord[] | undefined;
  private readonly expanded = new Map<string, string[]>();
  constructor(
    private readonly db: Database,
    private readonly clock: Clock = systemClock,
  ) {}

  list(): RoleRecord[] {
    if (!this.cache) {
      this.cache = (
        this.db.prepare('SELECT * FROM auth_roles ORDER BY role_id').all() as RoleRow[]
      ).map(roleFromRow);
    }
    return this.cache;
  }

  get(roleId: string): RoleRecord | undefined {
    return this.list().find((r) => r.roleId === roleId);
  }

  /** Create or replace a role. */
  set(roleId: string, scopes: string[], description = ''): RoleRecord {
    checkScopes(scopes);
    if (!/^[\x20-\x7e]+$/.test(roleId)) {
      throw new ApiError('InvalidRequestArguments', `invalid roleId '${roleId}'`);
    }
    const now = this.clock.now().toISOString();
    this.db
      .prepare(
        `INSERT INTO auth_roles (role_id, scopes, description, created, last_modified)
          VALUES (?, ?, ?, ?, ?)
          ON CONFLICT(role_id) DO UPDATE SET scopes = excluded.scopes,
            description = excluded.description, last_modified = excluded.last_modified`,
      )
      .run(roleId, JSON.stringify(scopes), description, now, now);
    this.invalidate();
    return this.get(roleId)!;
  }

  delete(roleId: string): void {
    this.db.prepare('DELETE FROM auth_roles WHERE role_id = ?').run(roleId);
    this.invalidate();
  }

  private invalidate(): void {
    this.cache = undefined;
    this.expanded.clear();
  }

  /** Expand `assume:` scopes through the roles until nothing changes. */
  expand(scopes: string[]): string[] {
    const key = JSON.stringify(scopes);
    const hit = this.expanded.get(key);
    if (hit) return [...hit];
    const out = this.expandUncached(scopes);
    if (this.expanded.size > 1000) this.expanded.clear();
    this.expanded.set(key, out);
    return [...out];
  }

  private expandUncached(scopes: string[]): string[] {
    const roles = this.list();
    let current = normalizeScopeSet([...scopes]);
    const applied = new Set<string>();
    for (let round = 0; round < 100; round++) {
      const added: string[] = [];
      for (const s of current) {
        if (applied.has(s)) continue;
        applied.add(s);
        for (const role of roles) added.push(...grantedBy(s, role));
      }
      if (added.length === 0) break;
      const next = mergeScopeSets(current, normalizeScopeSet(added));
      if (next.length === current.length && next.every((x, i) => x === current[i])) break;
      current = next;
    }
    return current;
  }
}

/** The scopes `role` grants to a holder of scope `s` (empty when it does not apply). */
function grantedBy(s: string, role: RoleRecord): string[] {
  const assume = 'assume:' + role.roleId;
  if (role.roleId.endsWith('*')) {
    const prefix = assume.slice(0, -1);
    if (s.startsWith(prefix)) return substitute(role.scopes, s.slice(prefix.length));
    if (s.endsWith('*') && prefix.startsWith(s.slice(0, -1))) return substitute(role.scopes, '*');
    return [];
  }
  if (s === assume || (s.endsWith('*') && assume.startsWith(s.slice(0, -1)))) return role.scopes;
  return [];
}

function substitute(scopes: string[], matched: string): string[] {
  return scopes.map((scope) => {
    const i = scope.indexOf('<..>');
    if (i < 0) return scope;
    const replaced = scope.slice(0, i) + matched + scope.slice(i + 4);
    // a star in the replacement makes everything after it irrelevant
    const star = matched.indexOf('*');
    return star >= 0 ? replaced.slice(0, i + star + 1) : replaced;
  });
}

function fail(message: string): never {
  throw new ApiError('AuthenticationFailed', message);
}

function certSignature(
  accessToken: string,
  cert: Record<string, any>,
  clientId: string,
  named: boolean,
): string {
  const sig = crypto.createHmac('sha256', accessToken);
  sig.update('version:' + cert.version + '\n');
  if (named) {
    sig.update('clientId:' + clientId + '\n');
    sig.update('issuer:' + cert.issuer + '\n');
  }
  sig.update('seed:' + cert.seed + '\n');
  sig.update('start:' + cert.start + '\n');
  sig.update('expiry:' + cert.expiry + '\n');
  sig.update('scopes:\n');
  sig.update((cert.scopes as string[]).join('\n'));
  return sig.digest('base64');
}

function tempKey(issuerAccessToken: string, seed: string): string {
  return crypto
    .createHmac('sha256', issuerAccessToken)
    .update(seed)
    .digest('base64')
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=/g, '');
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

/** Sign temporary credentials like taskcluster-client's `createTemporaryCredentials`. */
export function signTemporaryCredentials(opts: {
  issuer: { clientId: string; accessToken: string };
  clientId?: string;
  scopes: string[];
  start: Date;
  expiry: Date;
}): TemporaryCredentials {
  const named = !!opts.clientId && opts.clientId !== opts.issuer.clientId;
  const seed = (crypto.randomBytes(33).toString('base64url') + 'x'.repeat(44)).slice(0, 44);
  const cert: Record<string, any> = {
    version: 1,
    scopes: [...opts.scopes],
    start: opts.start.getTime(),
    expiry: opts.expiry.getTime(),
    seed,
    signature: null,
  };
  if (named) cert.issuer = opts.issuer.clientId;
  const clientId = named ? opts.clientId! : opts.issuer.clientId;
  cert.signature = certSignature(opts.issuer.accessToken, cert, clientId, named);
  return {
    clientId,
    accessToken: tempKey(opts.issuer.accessToken, seed),
    certificate: JSON.stringify(cert),
  };
}

interface Resolved {
  clientId: string;
  key: string;
  scopes: string[];
}

export interface HawkAuthOptions {
  clock?: Clock;
  /** Permitted Hawk timestamp skew (upstream: 15 minutes). */
  timestampSkewSec?: number;
}

/**
 * Temporary credentials signed by the embedded queue issuer (`static/taskcluster/queue`, scope
 * `*`) — what `HawkAuthenticator.issueCredentials` does, for callers holding only the database.
 */
export function issueCredentials(
  db: Database,
  opts: { clientId?: string; scopes: string[]; start: Date; expiry: Date },
): TemporaryCredentials {
  const issuer = getClient(db, QUEUE_ISSUER_CLIENT_ID);
  if (!issuer) throw new Error('the embedded database has no queue issuer client');
  return signTemporaryCredentials({
    issuer: { clientId: issuer.clientId, accessToken: issuer.accessToken },
    ...opts,
  });
}

/** The AuthProvider of the embedded services, backed by the database. */
export class HawkAuthenticator implements AuthProvider {
  readonly roles: RoleStore;
  private readonly clock: Clock;
  private readonly skew: number;

  constructor(
    readonly db: Database,
    opts: HawkAuthOptions = {},
  ) {
    this.clock = opts.clock ?? systemClock;
    this.skew = opts.timestampSkewSec ?? 15 * 60;
    initAuthTables(db, this.clock);
    this.roles = new RoleStore(db, this.clock);
  }

  expandScopes(scopes: string[]): string[] {
    return this.roles.expand(scopes);
  }

  anonymousScopes(): string[] {
    return this.roles.expand(['assume:anonymous']);
  }

  async authenticate(req: IncomingMessage, rawBody?: Buffer): Promise<AuthResult> {
    const authorization = req.headers.authorization;
    const url = new URL(req.url ?? '/', 'http://embedded.invalid');
    const bewit = url.searchParams.get('bewit');
    if (!authorization && bewit === null) {
      return { clientId: null, scopes: this.anonymousScopes() };
    }
    if (authorization && bewit !== null) fail('Hawk header and bewit given together');
    let id: string | undefined;
    let ext: string | undefined;
    if (authorization) {
      try {
        const attrs = hawk.utils.parseAuthorizationHeader(authorization) as Record<string, string>;
        id = attrs.id;
        ext = attrs.ext;
      } catch (e) {
        fail(`malformed Hawk Authorization header: ${(e as Error).message}`);
      }
    } else {
      const parts = Buffer.from(bewit!, 'base64url').toString('utf8').split('\\');
      if (parts.length !== 4) fail('malformed bewit');
      id = parts[0];
      ext = parts[3] || undefined;
    }
    if (!id) fail('Hawk credentials carry no id');
    let resolved: Resolved | undefined;
    const credentialsFunc = async (hawkId: string) => {
      resolved = this.resolve(hawkId, ext);
      return { id: hawkId, key: resolved.key, algorithm: 'sha256' };
    };
    // Hawk clients sign the path as Node's legacy url.parse escapes it (`'` → `%27`…), while
    // HTTP clients send it unescaped: verify against the path the client signed.
    const signed = legacyParse('http://embedded.invalid' + (req.url ?? '/'));
    const hawkReq = {
      method: req.method,
      url: (signed.pathname ?? '/') + (signed.search ?? ''),
      headers: req.headers,
    };
    try {
      if (authorization) {
        const { credentials, artifacts } = await hawk.server.authenticate(
          hawkReq,
          credentialsFunc,
          { timestampSkewSec: this.skew },
        );
        // as upstream: a payload hash is checked only when the client sent one
        if (artifacts.hash) {
          hawk.server.authenticatePayload(
            (rawBody ?? Buffer.alloc(0)).toString('utf8'),
            credentials,
            artifacts,
            req.headers['content-type'] ?? '',
          );
        }
      } else {
        await hawk.uri.authenticate(hawkReq, credentialsFunc, {});
      }
    } catch (e) {
      if (e instanceof ApiError) throw e;
      fail(`Hawk authentication failed: ${(e as Error).message}`);
    }
    if (!resolved) fail('Hawk authentication failed');
    return { clientId: resolved.clientId, scopes: resolved.scopes };
  }

  private loadActiveClient(clientId: string, role: string): ClientRecord {
    const c = getClient(this.db, clientId);
    if (!c) fail(`${role} '${clientId}' is not a known client`);
    if (c.disabled) fail(`${role} '${clientId}' is disabled`);
    if (new Date(c.expires).getTime() < this.clock.now().getTime()) {
      fail(`${role} '${clientId}' has expired`);
    }
    return c;
  }

  private resolve(id: string, extB64: string | undefined): Resolved {
    let ext: Record<string, any> = {};
    if (extB64) {
      try {
        ext = JSON.parse(Buffer.from(extB64, 'base64').toString('utf8'));
      } catch {
        fail('Hawk ext is not base64-encoded JSON');
      }
      if (typeof ext !== 'object' || ext === null) fail('Hawk ext must be a JSON object');
    }
    let key: string;
    let scopes: string[];
    if (ext.certificate !== undefined) {
      const cert = ext.certificate;
      if (typeof cert !== 'object' || cert === null) fail('certificate must be a JSON object');
      const named = typeof cert.issuer === 'string';
      if (cert.issuer !== undefined && !named) fail('certificate issuer must be a string');
      if (named && cert.issuer === id) fail('a certificate issuer must differ from its clientId');
      const issuer = this.loadActiveClient(named ? cert.issuer : id, 'certificate issuer');
      const issuerScopes = this.roles.expand(issuer.scopes);
      if (named && !satisfiesExpression(issuerScopes, `auth:create-client:${id}`)) {
        fail(`issuer '${issuer.clientId}' lacks auth:create-client:${id}`);
      }
      if (cert.version !== 1) fail('certificate version must be 1');
      if (typeof cert.seed !== 'string' || cert.seed.length !== 44) {
        fail('certificate seed must be a 44-character string');
      }
      if (typeof cert.start !== 'number' || typeof cert.expiry !== 'number') {
        fail('certificate start and expiry must be numbers (ms since epoch)');
      }
      if (!Array.isArray(cert.scopes) || !cert.scopes.every((s: unknown) => validScope(s as any))) {
        fail('certificate scopes must be an array of valid scopes');
      }
      if (typeof cert.signature !== 'string') fail('certificate signature must be a string');
      const now = this.clock.now().getTime();
      if (cert.start > now + CERT_SKEW_MS) fail('certificate is not valid yet');
      if (cert.expiry < now - CERT_SKEW_MS) fail('certificate has expired');
      if (cert.expiry - cert.start > CERT_MAX_LIFETIME_MS) {
        fail('certificate lifetime exceeds 31 days');
      }
      const expected = certSignature(issuer.accessToken, cert, id, named);
      if (!safeEqual(expected, cert.signature)) fail('certificate signature is invalid');
      if (!satisfiesExpression(issuerScopes, { AllOf: cert.scopes })) {
        fail(`certificate scopes exceed the scopes of issuer '${issuer.clientId}'`);
      }
      key = tempKey(issuer.accessToken, cert.seed);
      scopes = this.roles.expand(cert.scopes);
    } else {
      const client = this.loadActiveClient(id, 'client');
      key = client.accessToken;
      scopes = this.roles.expand(client.scopes);
    }
    if (ext.authorizedScopes !== undefined) {
      const authorized = ext.authorizedScopes;
      if (!Array.isArray(authorized) || !authorized.every((s: unknown) => validScope(s as any))) {
        fail('authorizedScopes must be an array of valid scopes');
      }
      const withAnonymous = mergeScopeSets(scopes, this.anonymousScopes());
      if (!satisfiesExpression(withAnonymous, { AllOf: authorized })) {
        fail(
          `the credentials of '${id}' do not satisfy their authorizedScopes ` +
            JSON.stringify(authorized),
        );
      }
      scopes = this.roles.expand(authorized);
    }
    scopes = mergeScopeSets(scopes, this.anonymousScopes());
    return { clientId: id, key, scopes };
  }

  issueCredentials: IssueCredentials = (opts) => issueCredentials(this.db, opts);

  signUrl(url: string, ttlSec = 15 * 60): string {
    const c = getClient(this.db, INDEX_CLIENT_ID);
    if (!c) throw new Error('the embedded database has no index client');
    const bewit = hawk.uri.getBewit(url, {
      credentials: { id: c.clientId, key: c.accessToken, algorithm: 'sha256' },
      ttlSec,
    });
    const u = new URL(url);
    u.searchParams.append('bewit', bewit);
    return u.toString();
  }
}
