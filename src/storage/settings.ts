// Where archives live: bucket, key prefix and how to reach S3 (or any S3-compatible server).
// Endpoint, region and credentials come from the standard AWS configuration, so the same code
// talks to AWS, a CDN-fronted bucket, MinIO or s3rver.
import { S3Client } from '@aws-sdk/client-s3';
import { ArchiveError } from '../util/errors.js';
import { redact } from '../util/log.js';

export interface S3Settings {
  bucket: string;
  /** Key prefix, without leading or trailing slash ('' for none). */
  prefix?: string;
  /** e.g. http://127.0.0.1:9000 for an S3-compatible server; AWS when absent. */
  endpoint?: string;
  region?: string;
  /** Path-style addressing (`<endpoint>/<bucket>/<key>`); default true when an endpoint is set. */
  forcePathStyle?: boolean;
  /** Public URL of the bucket (or CDN) under which keys are served; derived when absent. */
  publicBaseUrl?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  /** SDK attempts per request (default: $AWS_MAX_ATTEMPTS, else 3). */
  maxAttempts?: number;
}

const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const PREFIX_SEGMENT_RE = /^[A-Za-z0-9._=+-]+$/;

const nonEmpty = (v: string | undefined): string | undefined =>
  v !== undefined && v.trim() !== '' ? v.trim() : undefined;

/** Normalize and check a key prefix: no leading/trailing slash, no empty, `.` or `..` segments. */
export function normalizePrefix(prefix: string | undefined): string {
  const p = (prefix ?? '').replace(/^\/+|\/+$/g, '');
  if (p === '') return '';
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.' || seg === '..' || !PREFIX_SEGMENT_RE.test(seg)) {
      throw new ArchiveError(
        'invalid-config',
        `invalid S3 key prefix ${JSON.stringify(prefix)}: segment ${JSON.stringify(seg)} is not ` +
          'allowed (use letters, digits and . _ = + - separated by single slashes)',
        { prefix },
      );
    }
  }
  return p;
}

function checkUrl(what: string, value: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new ArchiveError('invalid-config', `${what} is not a URL: ${JSON.stringify(value)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new ArchiveError('invalid-config', `${what} must be http or https: ${value}`);
  }
  if (u.username || u.password) {
    throw new ArchiveError('invalid-config', `${what} must not carry credentials`);
  }
  return value.replace(/\/+$/, '');
}

/** Check and normalize settings (bucket name, prefix, URLs). */
export function validateS3Settings(s: S3Settings): S3Settings {
  if (!s.bucket) {
    throw new ArchiveError(
      'invalid-config',
      'no S3 bucket configured (pass --bucket or set MOZHARNESS_ARCHIVE_BUCKET)',
    );
  }
  if (!BUCKET_RE.test(s.bucket) || s.bucket.includes('..')) {
    throw new ArchiveError('invalid-config', `invalid S3 bucket name ${JSON.stringify(s.bucket)}`, {
      bucket: s.bucket,
    });
  }
  const out: S3Settings = { ...s, prefix: normalizePrefix(s.prefix) };
  if (s.endpoint) out.endpoint = checkUrl('S3 endpoint', s.endpoint);
  if (s.publicBaseUrl) out.publicBaseUrl = checkUrl('public base URL', s.publicBaseUrl);
  if (out.forcePathStyle === undefined && out.endpoint) out.forcePathStyle = true;
  if ((s.accessKeyId === undefined) !== (s.secretAccessKey === undefined)) {
    throw new ArchiveError(
      'invalid-config',
      'S3 credentials need both an access key id and a secret access key',
    );
  }
  return out;
}

/**
 * Settings from the standard AWS variables (AWS_REGION / AWS_DEFAULT_REGION,
 * AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 * AWS_SESSION_TOKEN) plus MOZHARNESS_ARCHIVE_BUCKET, MOZHARNESS_ARCHIVE_PREFIX and
 * MOZHARNESS_ARCHIVE_PUBLIC_BASE_URL; `overrides` (e.g. from flags) win. When no credentials are
 * given the SDK's default provider chain applies (profiles, instance roles, ...).
 */
export function s3SettingsFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  overrides: Partial<S3Settings> = {},
): S3Settings {
  const fromEnv: S3Settings = {
    bucket: nonEmpty(env.MOZHARNESS_ARCHIVE_BUCKET) ?? '',
    prefix: nonEmpty(env.MOZHARNESS_ARCHIVE_PREFIX),
    endpoint: nonEmpty(env.AWS_ENDPOINT_URL_S3) ?? nonEmpty(env.AWS_ENDPOINT_URL),
    region: nonEmpty(env.AWS_REGION) ?? nonEmpty(env.AWS_DEFAULT_REGION),
    publicBaseUrl: nonEmpty(env.MOZHARNESS_ARCHIVE_PUBLIC_BASE_URL),
    accessKeyId: nonEmpty(env.AWS_ACCESS_KEY_ID),
    secretAccessKey: nonEmpty(env.AWS_SECRET_ACCESS_KEY),
    sessionToken: nonEmpty(env.AWS_SESSION_TOKEN),
  };
  const merged: S3Settings = { ...fromEnv };
  for (const [k, v] of Object.entries(overrides)) {
    if (v !== undefined) (merged as unknown as Record<string, unknown>)[k] = v;
  }
  for (const k of Object.keys(merged) as (keyof S3Settings)[]) {
    if (merged[k] === undefined) delete merged[k];
  }
  return validateS3Settings(merged);
}

/** An S3 client for these settings: checksums only when required, path style with an endpoint. */
export function createS3Client(s: S3Settings): S3Client {
  redact(s.secretAccessKey);
  redact(s.sessionToken);
  return new S3Client({
    region: s.region ?? 'us-east-1',
    ...(s.endpoint ? { endpoint: s.endpoint } : {}),
    forcePathStyle: s.forcePathStyle ?? Boolean(s.endpoint),
    ...(s.accessKeyId && s.secretAccessKey
      ? {
          credentials: {
            accessKeyId: s.accessKeyId,
            secretAccessKey: s.secretAccessKey,
            ...(s.sessionToken ? { sessionToken: s.sessionToken } : {}),
          },
        }
      : {}),
    ...(s.maxAttempts ? { maxAttempts: s.maxAttempts } : {}),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** The public URL of the bucket: configured, or derived from endpoint / region. */
export function publicBaseUrl(s: S3Settings): string {
  if (s.publicBaseUrl) return s.publicBaseUrl.replace(/\/+$/, '');
  if (s.endpoint) {
    const base = s.endpoint.replace(/\/+$/, '');
    if (s.forcePathStyle ?? true) return `${base}/${s.bucket}`;
    const u = new URL(base);
    return `${u.protocol}//${s.bucket}.${u.host}${u.pathname.replace(/\/+$/, '')}`;
  }
  return `https://${s.bucket}.s3.${s.region ?? 'us-east-1'}.amazonaws.com`;
}
