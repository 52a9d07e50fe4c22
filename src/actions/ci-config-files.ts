// The ci-configuration files (Mozilla's fxci-config formats: projects.yml, actions.yml,
// grants.yml, roles.yml, hooks.yml, worker-pools.yml) of what src/actions/ci-config.ts derives
// a deployment must hold for one trust domain.
import * as yaml from 'js-yaml';
import {
  OWNER,
  pushRoleId,
  repoPath,
  REREGISTRATION_TIMEOUT_S,
  type CiConfig,
  type CiProject,
  type Level,
  type WorkerPoolDefinition,
} from './ci-config.js';

function dump(v: unknown): string {
  return yaml.dump(v, { lineWidth: 100, noRefs: true, sortKeys: false });
}

const gitAlias = (p: CiProject) => repoPath(p.repository).split('/').pop()!;

/** The job a role serves, in grants.yml's `job` vocabulary. */
function grantJob(roleId: string): string | undefined {
  if (/:branch:/.test(roleId)) return 'push';
  if (/:cron:\*$/.test(roleId)) return 'cron:*';
  if (/:action:/.test(roleId)) return 'action:*';
  if (/:pull-request$/.test(roleId)) return 'pull-request:*';
  if (/:pr-action:/.test(roleId)) return 'pr-action:*';
  return undefined;
}

function pullRequestPolicy(c: CiConfig): string {
  return c.pullRequestPolicy ?? 'collaborators';
}

/** projects.yml: an hg project per repository, a git project per repository with its branches. */
function projectsYml(c: CiConfig): Record<string, unknown> {
  const projects: Record<string, unknown> = {};
  for (const p of c.projects) {
    const alias = p.project;
    if (p.repositoryType === 'hg') {
      projects[alias] = {
        repo: p.repository,
        repo_type: 'hg',
        access: `scm_level_${p.level}`,
        trust_domain: c.trustDomain,
        features: {
          'hg-push': true,
          'taskgraph-actions': true,
          'treeherder-reporting': true,
          'trust-domain-scopes': true,
        },
      };
    } else {
      const key = gitAlias(p);
      const entry = (projects[key] ??= {
        repo: p.repository,
        repo_type: 'git',
        trust_domain: c.trustDomain,
        branches: [] as unknown[],
        features: {
          'github-pull-request': { policy: pullRequestPolicy(c) },
          'github-taskgraph': true,
          'pr-actions': true,
          'taskgraph-actions': true,
          'treeherder-reporting': true,
          'trust-domain-scopes': true,
        },
      }) as { branches: unknown[] };
      entry.branches.push({ name: p.branch, level: Number(p.level) });
    }
  }
  return projects;
}

/**
 * grants.yml: each role's scopes granted to the projects (by alias) whose job it serves, and
 * the hook role's to the action hooks.
 */
function grantsYml(c: CiConfig): unknown[] {
  const grants: unknown[] = [];
  for (const r of c.roles) {
    const job = grantJob(r.roleId);
    if (r.roleId.startsWith('hook-id:')) {
      grants.push({ grant: r.scopes, to: [{ hook: r.roleId.slice('hook-id:'.length) }] });
      continue;
    }
    if (!job) continue;
    const aliases = [
      ...new Set(
        c.projects
          .filter((p) =>
            job === 'push'
              ? r.roleId === pushRoleId(p)
              : r.roleId.startsWith(`repo:${repoPath(p.repository)}:`),
          )
          .map((p) => (p.repositoryType === 'git' ? gitAlias(p) : p.project)),
      ),
    ];
    grants.push({ grant: r.scopes, to: [{ project: { alias: aliases, job: [job] } }] });
  }
  return grants;
}

/** hooks.yml: the in-tree action hooks, by id. */
function hooksYml(c: CiConfig): Record<string, unknown> {
  return {
    note:
      "ci-admin generates these in-tree action hooks from actions.yml and each project's " +
      '.taskcluster.yml (in_tree_actions.py); `mozharness-archive ci-config --apply` creates them ' +
      'on deployments without ci-admin.',
    hooks: c.hooks.map((h) => ({
      hookGroupId: h.hookGroupId,
      hookId: h.hookId,
      name: h.definition.metadata.name,
      owner: h.definition.metadata.owner,
    })),
  };
}

/** worker-pools.yml: one pool per id template, with a variant per level. */
function workerPoolsYml(c: CiConfig): unknown[] {
  const pools: unknown[] = [];
  const grouped = new Map<string, { pool: WorkerPoolDefinition; levels: Level[] }>();
  for (const pool of c.workerPools) {
    const template = pool.level
      ? pool.workerPoolId.replace(`-${pool.level}/`, '-{level}/')
      : pool.workerPoolId;
    const g = grouped.get(template);
    if (g) g.levels.push(pool.level!);
    else grouped.set(template, { pool, levels: pool.level ? [pool.level] : [] });
  }
  for (const [template, { pool, levels }] of grouped) {
    pools.push({
      pool_id: template,
      description: pool.description.replace(/level-?\s?\d/g, (m) => m.replace(/\d/, '{level}')),
      owner: OWNER,
      email_on_error: true,
      provider_id: 'static',
      config: {
        lifecycle: { reregistrationTimeout: REREGISTRATION_TIMEOUT_S },
        workerConfig: {},
      },
      attributes: { role: pool.role, implementation: pool.implementation },
      ...(levels.length ? { variants: levels.map((l) => ({ level: Number(l) })) } : {}),
    });
  }
  return pools;
}

/** ci-configuration files (fxci-config's formats) for this trust domain. roles.yml lists the
 * roles grants.yml grants to, by id, as --apply creates them. */
export function ciConfigFiles(c: CiConfig): Record<string, string> {
  const actions = [
    { trust_domain: c.trustDomain, levels: c.levels.map(Number), action_perms: ['generic'] },
  ];
  const roles = c.roles.map((r) => ({
    roleId: r.roleId,
    description: r.description,
    scopes: r.scopes,
  }));
  return {
    'projects.yml': dump(projectsYml(c)),
    'actions.yml': dump(actions),
    'grants.yml': dump(grantsYml(c)),
    'roles.yml': dump(roles),
    'hooks.yml': dump(hooksYml(c)),
    'worker-pools.yml': dump({ pools: workerPoolsYml(c) }),
  };
}
