// The archive task's payload: validated against schemas/worker-payload.json before any work, then
// checked against the worker's repository allow-list. Every problem is one sentence naming the field.
import { validateSubdir } from '../archive/index.js';
import { DEFAULT_ZIP_ARTIFACT, METADATA_ARTIFACT } from '../contract/index.js';
import { isArchiveError } from '../util/errors.js';
import { redactUrl } from '../util/log.js';
import { COT_ARTIFACT, COT_SIGNATURE_ARTIFACT } from './cot.js';
import type { WorkerPayload } from '../generated/index.js';
import { describeSchemaErrors, projectValidator, type Defaulted } from '../util/schemas.js';

export { METADATA_ARTIFACT };
/** The zip of the same tree, for Firefox's test scripts (MOZHARNESS_URL). */
export const ZIP_ARTIFACT = DEFAULT_ZIP_ARTIFACT;
export const LOG_ARTIFACT = 'public/logs/live_backing.log';
export const LIVE_LOG_ARTIFACT = 'public/logs/live.log';
export const PAYLOAD_ERROR_ARTIFACT = 'public/errors/malformed-payload';

/** Kinder words than the schema's patterns, by field. */
const patternHints: Record<string, string> = {
  '/revision': 'must be the full 40-hex revision (short or symbolic revisions are not accepted)',
  '/treeDigest': 'must be a 64-hex sha256 tree digest',
  '/sha256': 'must be a 64-hex sha256',
  '/zipSha256': 'must be a 64-hex sha256',
  '/repository': 'must be an http(s) hgweb or git URL',
  '/subdir': 'must be a path relative to the repository root',
  '/artifactName': 'must be printable ASCII',
};

export type TestSpec = NonNullable<WorkerPayload['test']>;

/** A validated payload (schemas/worker-payload.json, its defaults applied). */
export type ArchivePayload = Defaulted<Omit<WorkerPayload, 'index'>, 'artifactName'> & {
  index?: Defaulted<NonNullable<WorkerPayload['index']>, 'rank'>;
};

export type PayloadCheck = { ok: true; payload: ArchivePayload } | { ok: false; errors: string[] };

/** True when an http(s)/file URL carries userinfo (`user:password@host`). */
export function hasUserinfo(url: string): boolean {
  try {
    const u = new URL(url);
    return u.username !== '' || u.password !== '';
  } catch {
    return /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(url);
  }
}

/** True when `url` starts with one of the allowed prefixes. */
export function isAllowedRepository(url: string, allowRepos: readonly string[]): boolean {
  return allowRepos.some((prefix) => url === prefix || url.startsWith(prefix));
}

/**
 * Validate a task payload. Defaults (artifactName, index.rank) are applied to a copy; the errors
 * name each wrong field and why, e.g. `payload.revision must be the full 40-hex revision (got "abc")`.
 */
export function checkPayload(raw: unknown, allowRepos: readonly string[]): PayloadCheck {
  const copy = raw === null || typeof raw !== 'object' ? raw : structuredClone(raw);
  const validate = projectValidator('worker-payload.json');
  if (!validate(copy)) {
    const errors = describeSchemaErrors(validate.errors, copy, { root: 'payload', patternHints });
    return { ok: false, errors };
  }
  const payload = copy as ArchivePayload;
  const errors: string[] = [];
  const shown = JSON.stringify(redactUrl(payload.repository));
  if (hasUserinfo(payload.repository)) {
    // Never fetched, and never echoed: the refusal shows the URL with its userinfo redacted.
    errors.push(
      `payload.repository ${shown} must not contain credentials (user:password@); ` +
        'the worker fetches public repositories only',
    );
  } else if (!isAllowedRepository(payload.repository, allowRepos)) {
    // Name the offending value only: the allow-list is the worker's configuration.
    errors.push(`payload.repository ${shown} is not on this worker's allow-list`);
  }
  try {
    payload.subdir = validateSubdir(payload.subdir);
  } catch (e) {
    if (isArchiveError(e) && e.code !== 'internal') {
      errors.push(`payload.subdir ${JSON.stringify(payload.subdir)} is not usable: ${e.message}`);
    } else if (/(^|\/)\.\.?(\/|$)|\/\/|^\/|\\/.test(payload.subdir)) {
      errors.push(
        `payload.subdir ${JSON.stringify(payload.subdir)} must not contain '..', '.', empty segments or backslashes`,
      );
    }
  }
  const reserved = [
    ZIP_ARTIFACT,
    METADATA_ARTIFACT,
    LOG_ARTIFACT,
    LIVE_LOG_ARTIFACT,
    PAYLOAD_ERROR_ARTIFACT,
    COT_ARTIFACT,
    COT_SIGNATURE_ARTIFACT,
  ];
  if (reserved.includes(payload.artifactName)) {
    errors.push(
      `payload.artifactName ${JSON.stringify(payload.artifactName)} is reserved for the worker's own artifacts`,
    );
  }
  return errors.length ? { ok: false, errors } : { ok: true, payload };
}
