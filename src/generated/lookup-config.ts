// Generated from schemas/lookup-config.json by `npm run gen:types` (json-schema-to-typescript): do not edit;
// change the schema and regenerate. test/schemas.test.ts fails when this file is out of date.

export interface LookupConfig {
  rootUrl?: string;
  indexPrefix?: string;
  stateDir?: string;
  /**
   * Hosts the service may contact besides the root URL and the repositories (origins or host:port).
   */
  allowHosts?: string[];
  cache?: {
    hitTtlSeconds?: number;
    missTtlSeconds?: number;
    maxEntries?: number;
  };
  /**
   * How long a revision the repository does not know is answered 404 without asking again.
   */
  unknownRevisionTtlSeconds?: number;
  /**
   * A failed on-demand build is replaced by a new archive task on a request at least this long after the failed one was created.
   */
  retryFailedAfterSeconds?: number;
  /**
   * Region name in the legacy status document's `s3_urls`.
   */
  legacyRegion?: string;
  /**
   * One in this many cached hits is logged; misses, on-demand builds and errors are always logged. 1 logs every request.
   */
  requestLogSampleRate?: number;
  projects: {
    [k: string]: {
      /**
       * hgweb (or git) URL of the repository.
       */
      repository: string;
      repositoryType?: 'hg' | 'git';
      subdir?: string;
      /**
       * Repository path of the legacy `/archiver/hgmo/<path>/<rev>` route (default: the URL path).
       */
      legacyPath?: string;
      /**
       * On-demand builds of revisions not indexed yet; absent: 404 for them.
       */
      onDemand?: {
        /**
         * `<provisionerId>/<workerType>` of the archive workers.
         */
        taskQueueId: string;
        /**
         * Scopes of the archive task itself.
         */
        scopes?: string[];
        schedulerId?: string;
        projectId?: string;
        priority?: 'highest' | 'very-high' | 'high' | 'medium' | 'low' | 'very-low' | 'lowest';
        /**
         * Minutes from creation to the task's deadline (default 180).
         */
        deadlineMinutes?: number;
        /**
         * Days the task (and so its artifacts and index entries) live (default 365).
         */
        expiresDays?: number;
        /**
         * Seconds the worker may spend (default 1800).
         */
        maxRunTime?: number;
        /**
         * Revisions not indexed yet that may be looked up in the repository per minute; more are answered 429.
         */
        repositoryLookupsPerMinute?: number;
      };
    };
  };
}
