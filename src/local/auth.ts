// Authentication of the embedded Taskcluster services, as upstream's auth service does it
// (services/auth/src/signaturevalidator.js): Hawk-signed requests and `bewit` signed URLs,
// verified against the configured clients (auth-store.ts) or a certificate of temporary
// credentials (auth-certificates.ts), restricted by `authorizedScopes`, roles expanded
// (auth-roles.ts), and the `anonymous` role merged into every request. Scope checks use
// taskcluster-lib-scopes.
import type { IncomingMessage } from 'node:http';
import { parse as legacyParse } from 'node:url';
import hawk from 'hawk';
import { mergeScopeSets, satisfiesExpression } from 'taskcluster-lib-scopes';
import { fail, issueCredentials, validScopes, verifyCertificate } from './auth-certificates.js';
import { RoleStore } from './auth-roles.js';
import { getClient, INDEX_CLIENT_ID, initAuthTables, type ClientRecord } from './auth-store.js';
import type { Database } from './db.js';
import { ApiError, systemClock, type Clock, type IssueCredentials } from './framework.js';

export interface AuthResult {
  /** The client id the request authenticated as, or null for an unauthenticated request. */
  clientId: string | null;
  /** Effective scopes (certificate/authorizedScopes restricted, roles expanded, anonymous merged). */
  scopes: string[];
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

interface Resolved {
  clientId: string;
  key: string;
  scopes: string[];
}

/** The Hawk `ext` of a request: a certificate and/or authorizedScopes. */
interface HawkExt {
  certificate?: unknown;
  authorizedScopes?: unknown;
}

export interface HawkAuthOptions {
  clock?: Clock;
  /** Permitted Hawk timestamp skew (upstream: 15 minutes). */
  timestampSkewSec?: number;
}

/** The id and ext a request's Hawk header or bewit names. */
function hawkIdentity(authorization: string | undefined, bewit: string | null) {
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
  return { id, ext };
}

function parseExt(extB64: string | undefined): HawkExt {
  if (!extB64) return {};
  let ext: unknown;
  try {
    ext = JSON.parse(Buffer.from(extB64, 'base64').toString('utf8'));
  } catch {
    fail('Hawk ext is not base64-encoded JSON');
  }
  if (typeof ext !== 'object' || ext === null) fail('Hawk ext must be a JSON object');
  return ext as HawkExt;
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
    const { ext } = hawkIdentity(authorization, bewit);
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

  /** The key and scopes of Hawk id `id` (a client, or temporary credentials with a certificate). */
  private resolve(id: string, extB64: string | undefined): Resolved {
    const ext = parseExt(extB64);
    let key: string;
    let scopes: string[];
    if (ext.certificate !== undefined) {
      ({ key, scopes } = verifyCertificate(ext.certificate, id, {
        activeClient: (clientId, role) => this.loadActiveClient(clientId, role),
        expand: (s) => this.roles.expand(s),
        now: this.clock.now().getTime(),
      }));
    } else {
      const client = this.loadActiveClient(id, 'client');
      key = client.accessToken;
      scopes = this.roles.expand(client.scopes);
    }
    if (ext.authorizedScopes !== undefined) {
      scopes = this.restrictTo(id, scopes, ext.authorizedScopes);
    }
    scopes = mergeScopeSets(scopes, this.anonymousScopes());
    return { clientId: id, key, scopes };
  }

  /** `authorizedScopes`: the request's scopes become these, which the credentials must hold. */
  private restrictTo(id: string, scopes: string[], authorized: unknown): string[] {
    if (!validScopes(authorized)) fail('authorizedScopes must be an array of valid scopes');
    const withAnonymous = mergeScopeSets(scopes, this.anonymousScopes());
    if (!satisfiesExpression(withAnonymous, { AllOf: authorized })) {
      fail(
        `the credentials of '${id}' do not satisfy their authorizedScopes ` +
          JSON.stringify(authorized),
      );
    }
    return this.roles.expand(authorized);
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
