// The archive task's name in the graph and the artifacts it publishes. The archive's own artifact
// name is configurable in taskcluster/config.yml (`archive.artifact-name`); the value here is the
// default that config ships, used by readers that have no config and no index data naming it.

/** The archive kind (taskcluster/kinds/<kind>/kind.yml) and the label of the push's archive task. */
export const ARCHIVE_KIND = 'mozharness-archive';
export const ARCHIVE_LABEL = 'mozharness-archive';

/** The archive (tar.gz) unless taskcluster/config.yml names another. */
export const DEFAULT_ARCHIVE_ARTIFACT = 'public/build/mozharness.tar.gz';
/** The same tree as a zip, as Firefox's test scripts fetch it through MOZHARNESS_URL. */
export const DEFAULT_ZIP_ARTIFACT = 'public/build/mozharness.zip';
/** The archive's metadata document (sha256, size, tree digest, revision). */
export const METADATA_ARTIFACT = 'public/build/mozharness.json';
/** A downstream build's output, which test tasks get as MOZ_BUILD_URL. */
export const BUILD_ARTIFACT = 'public/build/target.tar.gz';

/**
 * The archive artifact an index entry points at: the name recorded in its data by the decision
 * task, else the default.
 */
export function archiveArtifactOf(data: unknown): string {
  const name = (data as { artifactName?: unknown } | null | undefined)?.artifactName;
  return typeof name === 'string' && name ? name : DEFAULT_ARCHIVE_ARTIFACT;
}
