// Minimal types of the untyped packages this project uses: what src/ calls, no more. The typed
// clients over taskcluster-client are in src/taskcluster/client.ts.
declare module 'taskcluster-client' {
  /** A client class: its methods are typed by the interfaces of src/taskcluster/client.ts. */
  type ClientClass = new (options: Record<string, unknown>) => object;
  const tc: {
    Queue: ClientClass;
    Index: ClientClass;
    Hooks: ClientClass;
    Auth: ClientClass;
    WorkerManager: ClientClass;
    fromNow(offset: string, reference?: Date): Date;
    slugid(): string;
  };
  export default tc;
}
declare module 'taskcluster-client/src/apis.js' {
  /** Each client's `{reference}`: see src/taskcluster/references.ts for its shape. */
  const apis: Record<string, { reference: unknown }>;
  export default apis;
}
declare module 'taskcluster-lib-scopes' {
  export function satisfiesExpression(scopeset: string[], expression: unknown): boolean;
  export function removeGivenScopes(scopeset: string[], expression: unknown): unknown;
  export function scopeIntersection(a: string[], b: string[]): string[];
  export function scopeUnion(a: string[], b: string[]): string[];
  export function normalizeScopeSet(scopes: string[]): string[];
  export function validScope(scope: string): boolean;
  export function validExpression(expr: unknown): boolean;
  export function scopeCompare(a: string, b: string): number;
  export function mergeScopeSets(a: string[], b: string[]): string[];
}
declare module 's3rver' {
  import type http from 'node:http';
  interface S3rverOptions {
    directory: string;
    silent?: boolean;
    port?: number;
    address?: string;
    configureBuckets?: Array<{ name: string; configs?: string[] }>;
    [option: string]: unknown;
  }
  /** s3rver's Koa application; this project serves its callback from its own server. */
  class S3rver {
    constructor(options: S3rverOptions);
    configureBuckets(): Promise<void>;
    callback(): (req: http.IncomingMessage, res: http.ServerResponse) => void;
    run(): Promise<unknown>;
    close(): Promise<void>;
    httpServer?: unknown;
    logger?: { close?: () => void };
  }
  export default S3rver;
}
