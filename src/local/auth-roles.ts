// Roles of the embedded auth service, as upstream's: `assume:<roleId>` grants the role's scopes,
// expanded recursively; a roleId ending in `*` is a parameterized role.
import { mergeScopeSets, normalizeScopeSet } from 'taskcluster-lib-scopes';
import { checkScopes } from './auth-store.js';
import type { Database } from './db.js';
import { ApiError, systemClock, type Clock } from './framework.js';

export interface RoleRecord {
  roleId: string;
  scopes: string[];
  description: string;
  created: string;
  lastModified: string;
}

interface RoleRow {
  role_id: string;
  scopes: string;
  description: string;
  created: string;
  last_modified: string;
}

function roleFromRow(r: RoleRow): RoleRecord {
  return {
    roleId: r.role_id,
    scopes: JSON.parse(r.scopes) as string[],
    description: r.description,
    created: r.created,
    lastModified: r.last_modified,
  };
}

/**
 * Roles: `assume:<roleId>` grants the role's scopes, expanded recursively. A roleId ending in `*`
 * applies to every `assume:<prefix>…` scope, and `<..>` in its scopes is replaced by the part the
 * `*` matched (parameterized roles, as upstream).
 */
export class RoleStore {
  private cache: RoleRecord[] | undefined;
  private readonly expanded = new Map<string, string[]>();
  constructor(
    private readonly db: Database,
    private readonly clock: Clock = systemClock,
  ) {}

  list(): RoleRecord[] {
    if (!this.cache) {
      this.cache = (
        this.db.prepare('SELECT * FROM auth_roles ORDER BY role_id').all() as RoleRow[]
      ).map(roleFromRow);
    }
    return this.cache;
  }

  get(roleId: string): RoleRecord | undefined {
    return this.list().find((r) => r.roleId === roleId);
  }

  /** Create or replace a role. */
  set(roleId: string, scopes: string[], description = ''): RoleRecord {
    checkScopes(scopes);
    if (!/^[\x20-\x7e]+$/.test(roleId)) {
      throw new ApiError('InvalidRequestArguments', `invalid roleId '${roleId}'`);
    }
    const now = this.clock.now().toISOString();
    this.db
      .prepare(
        `INSERT INTO auth_roles (role_id, scopes, description, created, last_modified)
          VALUES (?, ?, ?, ?, ?)
          ON CONFLICT(role_id) DO UPDATE SET scopes = excluded.scopes,
            description = excluded.description, last_modified = excluded.last_modified`,
      )
      .run(roleId, JSON.stringify(scopes), description, now, now);
    this.invalidate();
    return this.get(roleId)!;
  }

  delete(roleId: string): void {
    this.db.prepare('DELETE FROM auth_roles WHERE role_id = ?').run(roleId);
    this.invalidate();
  }

  private invalidate(): void {
    this.cache = undefined;
    this.expanded.clear();
  }

  /** Expand `assume:` scopes through the roles until nothing changes. */
  expand(scopes: string[]): string[] {
    const key = JSON.stringify(scopes);
    const hit = this.expanded.get(key);
    if (hit) return [...hit];
    const out = this.expandUncached(scopes);
    if (this.expanded.size > 1000) this.expanded.clear();
    this.expanded.set(key, out);
    return [...out];
  }

  private expandUncached(scopes: string[]): string[] {
    const roles = this.list();
    let current = normalizeScopeSet([...scopes]);
    const applied = new Set<string>();
    for (let round = 0; round < 100; round++) {
      const added: string[] = [];
      for (const s of current) {
        if (applied.has(s)) continue;
        applied.add(s);
        for (const role of roles) added.push(...grantedBy(s, role));
      }
      if (added.length === 0) break;
      const next = mergeScopeSets(current, normalizeScopeSet(added));
      if (next.length === current.length && next.every((x, i) => x === current[i])) break;
      current = next;
    }
    return current;
  }
}

/** The scopes `role` grants to a holder of scope `s` (empty when it does not apply). */
function grantedBy(s: string, role: RoleRecord): string[] {
  const assume = 'assume:' + role.roleId;
  if (role.roleId.endsWith('*')) {
    const prefix = assume.slice(0, -1);
    if (s.startsWith(prefix)) return substitute(role.scopes, s.slice(prefix.length));
    if (s.endsWith('*') && prefix.startsWith(s.slice(0, -1))) return substitute(role.scopes, '*');
    return [];
  }
  if (s === assume || (s.endsWith('*') && assume.startsWith(s.slice(0, -1)))) return role.scopes;
  return [];
}

function substitute(scopes: string[], matched: string): string[] {
  return scopes.map((scope) => {
    const i = scope.indexOf('<..>');
    if (i < 0) return scope;
    const replaced = scope.slice(0, i) + matched + scope.slice(i + 4);
    // a star in the replacement makes everything after it irrelevant
    const star = matched.indexOf('*');
    return star >= 0 ? replaced.slice(0, i + star + 1) : replaced;
  });
}
