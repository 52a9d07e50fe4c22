// Contract between the embedded HTTP framework (server.ts, auth.ts) and the services it hosts
// (queue, index, hooks, auth). A service is a table of handlers keyed by the upstream method name
// (from taskcluster-client's src/apis.js); the framework routes, authenticates, parses and
// serialises, and answers 501 for a method no service implements.
import type Database from 'better-sqlite3';
import type { ApiEntry } from '../taskcluster/references.js';
import type { TaskDefinition } from '../taskcluster/types.js';

/** Time source; tests substitute a controllable clock. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** A controllable clock for tests: starts at `start`, moves only when told. */
export class ManualClock implements Clock {
  private t: number;
  constructor(start: Date = new Date()) {
    this.t = start.getTime();
  }
  now(): Date {
    return new Date(this.t);
  }
  advance(ms: number): void {
    this.t += ms;
  }
  set(d: Date): void {
    this.t = d.getTime();
  }
}

/** Errors in the upstream format: JSON `{code, message, requestInfo}` with the upstream status. */
export type ApiErrorCode =
  | 'MalformedPayload' // 400
  | 'InvalidRequestArguments' // 400
  | 'InputValidationError' // 400
  | 'InputError' // 400
  | 'AuthenticationFailed' // 401
  | 'InsufficientScopes' // 403
  | 'ResourceNotFound' // 404
  | 'RequestConflict' // 409
  | 'ResourceExpired' // 410
  | 'InputTooLarge' // 413
  | 'ArtifactError' // 424 (error artifacts)
  | 'InternalServerError' // 500
  | 'NotImplemented'; // 501

const API_ERROR_STATUS: Record<ApiErrorCode, number> = {
  MalformedPayload: 400,
  InvalidRequestArguments: 400,
  InputValidationError: 400,
  InputError: 400,
  AuthenticationFailed: 401,
  InsufficientScopes: 403,
  ResourceNotFound: 404,
  RequestConflict: 409,
  ResourceExpired: 410,
  InputTooLarge: 413,
  ArtifactError: 424,
  InternalServerError: 500,
  NotImplemented: 501,
};

export class ApiError extends Error {
  readonly code: ApiErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown>;
  constructor(code: ApiErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.code = code;
    this.status = API_ERROR_STATUS[code];
    this.details = details;
  }
}

/** A scope expression as upstream: a scope string, `{AllOf: [...]}` or `{AnyOf: [...]}`. */
export type ScopeExpression = string | { AllOf: ScopeExpression[] } | { AnyOf: ScopeExpression[] };

export interface RequestContext {
  /** The upstream API entry being served (name, method, route, scopes…). */
  entry: ApiEntry;
  /** URL parameters, already URL-decoded (`name` may contain `/`). */
  params: Record<string, string>;
  query: Record<string, string>;
  /** Parsed JSON body (undefined when none). */
  body: unknown;
  /** The authenticated client, or null for an unauthenticated request. */
  clientId: string | null;
  /** Effective scopes after certificate and authorizedScopes restrictions ([] if unauthenticated). */
  scopes: string[];
  /** The root URL the server is reachable at (for building artifact URLs etc). */
  rootUrl: string;
  /** Aborted when the client goes away before the answer (long polls stop waiting). */
  signal?: AbortSignal;
  /** True when the caller's scopes satisfy the expression. */
  satisfies(expr: ScopeExpression): boolean;
  /** Throws ApiError('InsufficientScopes', …) naming the missing scopes, or 'AuthenticationFailed'
   * (401) when the request was unauthenticated and the expression is not satisfied. */
  requireScopes(expr: ScopeExpression): void;
  /**
   * Check the method's scope expression from its API reference, rendered with the URL parameters
   * and `params` (as upstream's `req.authorize(params)`); no-op for a method without scopes.
   */
  authorize(params?: Record<string, unknown>): void;
}

export interface HandlerResult {
  status?: number; // default 200
  body?: unknown; // JSON-serialised; omitted for 204/303 without body
  headers?: Record<string, string>;
}

export type Handler = (ctx: RequestContext) => Promise<HandlerResult> | HandlerResult;

export interface Service {
  /** Upstream service name: 'queue' | 'index' | 'hooks' | 'auth'. */
  name: string;
  handlers: Partial<Record<string, Handler>>;
  /** Called periodically by the sweeper (claim expiry, deadlines, expiry). */
  sweep?(): void | Promise<void>;
  close?(): void | Promise<void>;
}

/** What every service gets at construction. */
export interface ServiceDeps {
  db: Database.Database;
  clock: Clock;
  rootUrl: () => string;
}

/** Credentials the queue issues to a claimed run (a certificate, as upstream). */
export interface TemporaryCredentials {
  clientId: string;
  accessToken: string;
  certificate: string;
}

/** Issues temporary credentials signed by the embedded auth service. */
export type IssueCredentials = (opts: {
  clientId?: string;
  scopes: string[];
  start: Date;
  expiry: Date;
}) => TemporaryCredentials;

/** Hooks the queue exposes to other services (index auto-indexing, hooks creating tasks). */
export interface QueueEvents {
  /** Called after a run resolved as completed (the index service indexes `index.` routes). */
  onTaskCompleted?: (taskId: string, task: TaskDefinition) => void;
}
