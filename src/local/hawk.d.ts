// hawk@9 ships no TypeScript declarations; the embedded auth uses a handful of its functions.
declare module 'hawk' {
  interface HawkCredentials {
    id?: string;
    key: string;
    algorithm: string;
  }
  const hawk: {
    server: {
      authenticate(
        req: unknown,
        credentialsFunc: (id: string) => Promise<HawkCredentials | null>,
        options?: Record<string, unknown>,
      ): Promise<{ credentials: HawkCredentials; artifacts: Record<string, unknown> }>;
      authenticatePayload(
        payload: string,
        credentials: HawkCredentials,
        artifacts: Record<string, unknown>,
        contentType: string,
      ): void;
    };
    uri: {
      authenticate(
        req: unknown,
        credentialsFunc: (id: string) => Promise<HawkCredentials | null>,
        options?: Record<string, unknown>,
      ): Promise<{ credentials: HawkCredentials; attributes: Record<string, unknown> }>;
      getBewit(
        uri: string,
        options: { credentials: HawkCredentials; ttlSec: number; ext?: string },
      ): string;
    };
    client: {
      header(
        uri: string,
        method: string,
        options: Record<string, unknown>,
      ): { header: string; artifacts: Record<string, unknown> };
    };
    utils: {
      parseAuthorizationHeader(header: string, keys?: string[]): Record<string, string>;
    };
  };
  export default hawk;
}
