// The embedded auth service: who am I (`currentScopes`), role expansion (`expandScopes`), clients
// and roles. Clients and roles live in the tables of src/local/auth-store.ts; a role is granted by the
// scope `assume:<roleId>` and expanded recursively.
import { satisfiesExpression } from 'taskcluster-lib-scopes';
import type { RoleRecord } from './auth-roles.js';
import {
  checkScopes,
  createClient,
  getClient,
  listClients,
  type ClientRecord,
} from './auth-store.js';
import type { HawkAuthenticator } from './auth.js';
import {
  ApiError,
  type Handler,
  type RequestContext,
  type Service,
  type ServiceDeps,
} from './framework.js';

function body(ctx: RequestContext): Record<string, unknown> {
  if (
    ctx.body === undefined ||
    ctx.body === null ||
    typeof ctx.body !== 'object' ||
    Array.isArray(ctx.body)
  ) {
    throw new ApiError('InputValidationError', 'the request body must be a JSON object');
  }
  return ctx.body as Record<string, unknown>;
}

function dateField(v: unknown, what: string): Date {
  const d = typeof v === 'string' ? new Date(v) : undefined;
  if (!d || Number.isNaN(d.getTime())) {
    throw new ApiError('InputValidationError', `${what} must be a date-time string`);
  }
  return d;
}

export class AuthService implements Service {
  readonly name = 'auth';
  readonly handlers: Record<string, Handler>;

  constructor(private readonly deps: ServiceDeps & { auth: HawkAuthenticator }) {
    this.handlers = {
      currentScopes: (ctx) => {
        return { body: { scopes: ctx.scopes } };
      },
      expandScopes: (ctx) => {
        const scopes = checkScopes(body(ctx).scopes, 'scopes');
        return { body: { scopes: this.deps.auth.expandScopes(scopes) } };
      },
      client: (ctx) => {
        return { body: this.clientResponse(this.mustGetClient(ctx.params.clientId!)) };
      },
      listClients: (ctx) => {
        const clients = listClients(this.deps.db, ctx.query.prefix ?? '').map((c) =>
          this.clientResponse(c),
        );
        return { body: { clients } };
      },
      createClient: (ctx) => {
        const clientId = ctx.params.clientId!;
        const b = body(ctx);
        const scopes = checkScopes(b.scopes ?? [], 'scopes');
        ctx.authorize({ scopes });
        const expires = dateField(b.expires, 'expires');
        if (getClient(this.deps.db, clientId)) {
          throw new ApiError('RequestConflict', `client '${clientId}' already exists`);
        }
        const creds = createClient(this.deps.db, clientId, scopes, {
          description: typeof b.description === 'string' ? b.description : '',
          expires,
          clock: this.deps.clock,
        });
        return {
          body: {
            ...this.clientResponse(this.mustGetClient(clientId)),
            accessToken: creds.accessToken,
          },
        };
      },
      deleteClient: (ctx) => {
        const clientId = ctx.params.clientId!;
        this.deps.db.prepare('DELETE FROM auth_clients WHERE client_id = ?').run(clientId);
        return { status: 200, body: undefined };
      },
      role: (ctx) => {
        const role = this.deps.auth.roles.get(ctx.params.roleId!);
        if (!role) throw new ApiError('ResourceNotFound', `role '${ctx.params.roleId}' not found`);
        return { body: this.roleResponse(role) };
      },
      listRoles: () => {
        return { body: this.deps.auth.roles.list().map((r) => this.roleResponse(r)) };
      },
      createRole: (ctx) => this.writeRole(ctx, 'create'),
      updateRole: (ctx) => this.writeRole(ctx, 'update'),
      deleteRole: (ctx) => {
        this.deps.auth.roles.delete(ctx.params.roleId!);
        return { status: 200, body: undefined };
      },
    };
  }

  private mustGetClient(clientId: string): ClientRecord {
    const c = getClient(this.deps.db, clientId);
    if (!c) throw new ApiError('ResourceNotFound', `client '${clientId}' not found`);
    return c;
  }

  private clientResponse(c: ClientRecord): Record<string, unknown> {
    return {
      clientId: c.clientId,
      description: c.description,
      expires: c.expires,
      created: c.created,
      lastModified: c.lastModified,
      lastDateUsed: c.created,
      lastRotated: c.lastRotated,
      deleteOnExpiration: c.deleteOnExpiration,
      disabled: c.disabled,
      scopes: c.scopes,
      expandedScopes: this.deps.auth.expandScopes(c.scopes),
    };
  }

  private roleResponse(r: RoleRecord): Record<string, unknown> {
    return {
      roleId: r.roleId,
      scopes: r.scopes,
      description: r.description,
      created: r.created,
      lastModified: r.lastModified,
      expandedScopes: this.deps.auth.expandScopes([`assume:${r.roleId}`]),
    };
  }

  private writeRole(ctx: RequestContext, how: 'create' | 'update') {
    const roleId = ctx.params.roleId!;
    const b = body(ctx);
    const scopes = checkScopes(b.scopes, 'scopes');
    const existing = this.deps.auth.roles.get(roleId);
    if (how === 'create') {
      ctx.authorize({ scopes });
      if (existing) {
        const same =
          existing.description === (b.description ?? '') &&
          JSON.stringify(existing.scopes) === JSON.stringify(scopes);
        if (!same) throw new ApiError('RequestConflict', `role '${roleId}' already exists`);
        return { body: this.roleResponse(existing) };
      }
    } else {
      if (!existing) throw new ApiError('ResourceNotFound', `role '${roleId}' not found`);
      const added = scopes.filter((s) => !satisfiesExpression(existing.scopes, s));
      ctx.authorize({ scopesAdded: added });
    }
    const role = this.deps.auth.roles.set(
      roleId,
      scopes,
      typeof b.description === 'string' ? b.description : '',
    );
    return { body: this.roleResponse(role) };
  }
}
