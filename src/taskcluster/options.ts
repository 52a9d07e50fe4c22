// Client options and the TASKCLUSTER_* environment, without loading taskcluster-client: the
// command line reads them before it knows whether a command needs a client at all.
export interface Credentials {
  clientId: string;
  accessToken: string;
  certificate?: string | Record<string, unknown>;
}

export interface ClientOptions {
  rootUrl: string;
  credentials?: Credentials;
  authorizedScopes?: string[];
  /** Retries of 5xx and network errors (client default 5). */
  retries?: number;
  /** Per-request timeout in ms (client default 30 s). */
  timeout?: number;
  maxDelay?: number;
}

export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env): ClientOptions | undefined {
  const proxy = env.TASKCLUSTER_PROXY_URL;
  if (proxy) return { rootUrl: proxy.replace(/\/$/, '') };
  const rootUrl = env.TASKCLUSTER_ROOT_URL;
  if (!rootUrl) return undefined;
  const o: ClientOptions = { rootUrl: rootUrl.replace(/\/$/, '') };
  if (env.TASKCLUSTER_CLIENT_ID && env.TASKCLUSTER_ACCESS_TOKEN) {
    o.credentials = {
      clientId: env.TASKCLUSTER_CLIENT_ID,
      accessToken: env.TASKCLUSTER_ACCESS_TOKEN,
    };
    if (env.TASKCLUSTER_CERTIFICATE) o.credentials.certificate = env.TASKCLUSTER_CERTIFICATE;
  }
  return o;
}
