// Temporary credentials, as upstream's auth service and taskcluster-client make them: a
// certificate (scopes, start, expiry, seed) signed with the issuer's accessToken, and an
// accessToken derived from the seed. Issued here for claimed runs; verified for every request
// that carries one.
import crypto from 'node:crypto';
import { satisfiesExpression, validScope } from 'taskcluster-lib-scopes';
import { getClient, QUEUE_ISSUER_CLIENT_ID, type ClientRecord } from './auth-store.js';
import type { Database } from './db.js';
import { ApiError, type TemporaryCredentials } from './framework.js';

const CERT_MAX_LIFETIME_MS = 31 * 24 * 3600 * 1000;
const CERT_SKEW_MS = 5 * 60 * 1000;

/** A certificate as taskcluster-client writes it into temporary credentials. */
interface Certificate {
  version: number;
  scopes: string[];
  start: number;
  expiry: number;
  seed: string;
  signature: string | null;
  issuer?: string;
}

/** What verifying a certificate needs from the auth service. */
export interface CertificateIssuers {
  /** The issuer's client, refused (401) when unknown, disabled or expired. */
  activeClient(clientId: string, role: string): ClientRecord;
  /** Role expansion of the issuer's and the certificate's scopes. */
  expand(scopes: string[]): string[];
  /** The clock's now, in ms. */
  now: number;
}

/** Refuse a request's credentials (401). */
export function fail(message: string): never {
  throw new ApiError('AuthenticationFailed', message);
}

function certSignature(
  accessToken: string,
  cert: Certificate,
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
  sig.update(cert.scopes.join('\n'));
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

/** True when `value` is an array of valid scope strings. */
export function validScopes(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((s: unknown) => validScope(s as string));
}

/** Sign temporary credentials like taskcluster-client's `createTemporaryCredentials`. */
function signTemporaryCredentials(opts: {
  issuer: { clientId: string; accessToken: string };
  clientId?: string;
  scopes: string[];
  start: Date;
  expiry: Date;
}): TemporaryCredentials {
  const named = !!opts.clientId && opts.clientId !== opts.issuer.clientId;
  const seed = (crypto.randomBytes(33).toString('base64url') + 'x'.repeat(44)).slice(0, 44);
  const cert: Certificate = {
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

/**
 * Temporary credentials signed by the embedded queue issuer (`static/taskcluster/queue`, scope
 * `*`), for callers holding only the database.
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

/** Throws (401) unless `value` has a certificate's shape. */
function checkShape(value: unknown): asserts value is Certificate {
  if (typeof value !== 'object' || value === null) fail('certificate must be a JSON object');
  const cert = value as Record<string, unknown>;
  if (cert.version !== 1) fail('certificate version must be 1');
  if (typeof cert.seed !== 'string' || cert.seed.length !== 44) {
    fail('certificate seed must be a 44-character string');
  }
  if (typeof cert.start !== 'number' || typeof cert.expiry !== 'number') {
    fail('certificate start and expiry must be numbers (ms since epoch)');
  }
  if (!validScopes(cert.scopes)) fail('certificate scopes must be an array of valid scopes');
  if (typeof cert.signature !== 'string') fail('certificate signature must be a string');
}

/**
 * Verify the certificate of temporary credentials with client id `id`, as upstream: issued by an
 * active client (named: one allowed to create `id`), valid now, at most 31 days long, signed by
 * the issuer and within its scopes. Returns the Hawk key and the certificate's expanded scopes.
 */
export function verifyCertificate(
  value: unknown,
  id: string,
  issuers: CertificateIssuers,
): { key: string; scopes: string[] } {
  if (typeof value !== 'object' || value === null) fail('certificate must be a JSON object');
  const { issuer: issuerId } = value as { issuer?: unknown };
  const named = typeof issuerId === 'string';
  if (issuerId !== undefined && !named) fail('certificate issuer must be a string');
  if (named && issuerId === id) fail('a certificate issuer must differ from its clientId');
  const issuer = issuers.activeClient(named ? issuerId : id, 'certificate issuer');
  const issuerScopes = issuers.expand(issuer.scopes);
  if (named && !satisfiesExpression(issuerScopes, `auth:create-client:${id}`)) {
    fail(`issuer '${issuer.clientId}' lacks auth:create-client:${id}`);
  }
  checkShape(value);
  const cert = value;
  if (cert.start > issuers.now + CERT_SKEW_MS) fail('certificate is not valid yet');
  if (cert.expiry < issuers.now - CERT_SKEW_MS) fail('certificate has expired');
  if (cert.expiry - cert.start > CERT_MAX_LIFETIME_MS) fail('certificate lifetime exceeds 31 days');
  const expected = certSignature(issuer.accessToken, cert, id, named);
  if (!safeEqual(expected, cert.signature as string)) fail('certificate signature is invalid');
  if (!satisfiesExpression(issuerScopes, { AllOf: cert.scopes })) {
    fail(`certificate scopes exceed the scopes of issuer '${issuer.clientId}'`);
  }
  return { key: tempKey(issuer.accessToken, cert.seed), scopes: issuers.expand(cert.scopes) };
}
