// The S3 archive store and verified downloads.
export {
  createS3Client,
  normalizePrefix,
  publicBaseUrl,
  s3SettingsFromEnv,
  validateS3Settings,
  type S3Settings,
} from './settings.js';
export {
  ARCHIVE_CONTENT_TYPE,
  ArchiveStore,
  checkSha256,
  IMMUTABLE_CACHE_CONTROL,
  metadataDocument,
  METADATA_CONTENT_TYPE,
  s3Error,
  type PutOptions,
  type PutResult,
  type StoredMetadata,
} from './store.js';
export { downloadVerified, type DownloadOptions, type DownloadResult } from './download.js';
export { describeArchiveFile, hashArchiveFile, validateArchiveMetadata } from './metadata.js';
