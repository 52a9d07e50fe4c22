// The embedded Hooks service (upstream services/hooks): a configured set of hooks whose task
// template is rendered with json-e when fired. `triggerHook` validates the payload against the
// hook's `triggerSchema`, renders the template in the hooks service's context
// `{firedBy: 'triggerHook', payload, clientId, now, taskId}`, applies upstream's defaults
// (created = now, deadline = now + 1 day, expires = now + 1 month, taskGroupId = taskId) and
// creates the task through the Queue with the hook's own scopes (`assume:hook-id:<group>/<id>`).
import type { ValidateFunction } from 'ajv';
import jsone from 'json-e';
import slugid from 'slugid';
import type { TaskDefinition, TaskStatusResponse } from '../taskcluster/types.js';
import { silentLogger, type Logger } from '../util/log.js';
import { foreignValidator } from '../util/schemas.js';
import {
  ApiError,
  type Handler,
  type RequestContext,
  type Service,
  type ServiceDeps,
} from './framework.js';

/** Creates a task on behalf of a principal holding `scopes` (the queue's `createTaskAs`). */
export type CreateTaskAs = (
  taskId: string,
  def: TaskDefinition,
  scopes: string[],
) => TaskStatusResponse | Promise<TaskStatusResponse>;

export interface HookMetadata {
  name: string;
  description: string;
  owner: string;
  emailOnError?: boolean;
}

/** A hook's configuration (create-hook-request). */
export interface HookConfig {
  metadata: HookMetadata;
  /** The json-e task template. */
  task: Record<string, unknown>;
  triggerSchema?: Record<string, unknown>;
  schedule?: string[];
  bindings?: Array<{ exchange: string; routingKeyPattern: string }>;
}

export interface HookDefinition extends Required<HookConfig> {
  hookGroupId: string;
  hookId: string;
  metadata: Required<HookMetadata>;
}

export interface HookFire {
  taskId: string;
  firedBy: string;
  result: 'success' | 'error' | 'no-task';
  error: string;
  time: string;
}

const DEFAULT_TRIGGER_SCHEMA = { type: 'object', properties: {}, additionalProperties: false };
const IDENT = /^[a-zA-Z0-9-_]{1,64}$/;
const HOOK_ID = /^[a-zA-Z0-9-_/]{1,64}$/;

const DAY = 24 * 3600 * 1000;

function addMonths(d: Date, n: number): Date {
  const out = new Date(d.getTime());
  out.setUTCMonth(out.getUTCMonth() + n);
  return out;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS hooks (
    hook_group_id TEXT NOT NULL,
    hook_id TEXT NOT NULL,
    definition TEXT NOT NULL,
    PRIMARY KEY (hook_group_id, hook_id)
  );
  CREATE TABLE IF NOT EXISTS hook_fires (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    hook_group_id TEXT NOT NULL,
    hook_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    fired_by TEXT NOT NULL,
    result TEXT NOT NULL,
    error TEXT NOT NULL,
    time TEXT NOT NULL
  );
`;

interface HookRow {
  hook_group_id: string;
  hook_id: string;
  definition: string;
}

export class HooksService implements Service {
  readonly name = 'hooks';
  readonly handlers: Record<string, Handler>;
  private readonly log: Logger;

  constructor(
    private readonly deps: ServiceDeps & {
      /** Creates the rendered task with the hook's scopes (the queue's `createTaskAs`). */
      createTask: CreateTaskAs;
      /** Expands the hook's role `assume:hook-id:<g>/<h>` into scopes. */
      expandScopes: (scopes: string[]) => string[];
      log?: Logger;
    },
  ) {
    this.log = deps.log ?? silentLogger;
    deps.db.exec(SCHEMA);
    const ids = (ctx: RequestContext) => [ctx.params.hookGroupId!, ctx.params.hookId!] as const;
    this.handlers = {
      listHookGroups: () => {
        const rows = deps.db
          .prepare('SELECT DISTINCT hook_group_id FROM hooks ORDER BY hook_group_id')
          .all() as Array<{ hook_group_id: string }>;
        return { body: { groups: rows.map((r) => r.hook_group_id) } };
      },
      listHooks: (ctx) => {
        const g = ctx.params.hookGroupId!;
        const hooks = this.list(g);
        if (hooks.length === 0) throw new ApiError('ResourceNotFound', `no hooks in group '${g}'`);
        return { body: { hooks } };
      },
      hook: (ctx) => {
        const [g, h] = ids(ctx);
        return { body: this.mustGet(g, h) };
      },
      getHookStatus: (ctx) => ({ body: this.hookStatus(...ids(ctx)) }),
      createHook: (ctx) => ({ body: this.createHook(...ids(ctx), ctx.body) }),
      updateHook: (ctx) => {
        const [g, h] = ids(ctx);
        this.mustGet(g, h);
        return { body: this.configureHook(g, h, this.checkConfig(ctx.body)) };
      },
      removeHook: (ctx) => {
        const [g, h] = ids(ctx);
        deps.db.prepare('DELETE FROM hooks WHERE hook_group_id = ? AND hook_id = ?').run(g, h);
        return { status: 200, body: undefined };
      },
      triggerHook: async (ctx) => {
        const [g, h] = ids(ctx);
        return { body: await this.trigger(g, h, ctx.body ?? {}, ctx.clientId) };
      },
      listLastFires: (ctx) => ({ body: this.listLastFires(...ids(ctx)) }),
    };
  }

  private hookStatus(g: string, h: string) {
    this.mustGet(g, h);
    const last = this.lastFires(g, h)[0];
    const lastFire = !last
      ? { result: 'no-fire' }
      : last.result === 'error'
        ? { result: 'error', error: last.error, time: last.time }
        : { result: 'success', taskId: last.taskId, time: last.time };
    return { lastFire };
  }

  /** A new hook; the same definition again answers it, another one is a 409. */
  private createHook(g: string, h: string, body: unknown): HookDefinition {
    const config = this.checkConfig(body);
    const existing = this.get(g, h);
    const def = this.definition(g, h, config);
    if (existing) {
      if (JSON.stringify(existing) !== JSON.stringify(def)) {
        throw new ApiError('RequestConflict', `hook ${g}/${h} already exists`);
      }
      return existing;
    }
    return this.configureHook(g, h, config);
  }

  private listLastFires(g: string, h: string) {
    this.mustGet(g, h);
    const lastFires = this.lastFires(g, h).map((f) => ({
      hookGroupId: g,
      hookId: h,
      firedBy: f.firedBy,
      taskId: f.taskId,
      taskCreateTime: f.time,
      result: f.result === 'error' ? 'error' : 'success',
      error: f.error,
    }));
    return { lastFires };
  }

  private definition(g: string, h: string, c: HookConfig): HookDefinition {
    return {
      hookGroupId: g,
      hookId: h,
      metadata: {
        name: c.metadata.name,
        description: c.metadata.description,
        owner: c.metadata.owner,
        emailOnError: c.metadata.emailOnError ?? true,
      },
      schedule: c.schedule ?? [],
      task: c.task,
      triggerSchema: c.triggerSchema ?? DEFAULT_TRIGGER_SCHEMA,
      bindings: c.bindings ?? [],
    };
  }

  private checkConfig(b: unknown): HookConfig {
    if (typeof b !== 'object' || b === null || Array.isArray(b)) {
      throw new ApiError('InputValidationError', 'the hook definition must be a JSON object');
    }
    const o = b as Record<string, unknown>;
    const allowed = [
      'metadata',
      'task',
      'triggerSchema',
      'schedule',
      'bindings',
      'hookGroupId',
      'hookId',
    ];
    const extra = Object.keys(o).filter((k) => !allowed.includes(k));
    if (extra.length) {
      throw new ApiError('InputValidationError', `unexpected properties: ${extra.join(', ')}`);
    }
    const m = o.metadata as Record<string, unknown> | null | undefined;
    if (
      typeof m !== 'object' ||
      m === null ||
      typeof m.name !== 'string' ||
      typeof m.description !== 'string' ||
      typeof m.owner !== 'string'
    ) {
      throw new ApiError(
        'InputValidationError',
        'metadata must be an object with string name, description and owner',
      );
    }
    if (typeof o.task !== 'object' || o.task === null || Array.isArray(o.task)) {
      throw new ApiError('InputValidationError', 'task must be a JSON-e template object');
    }
    if (
      o.triggerSchema !== undefined &&
      (typeof o.triggerSchema !== 'object' || o.triggerSchema === null)
    ) {
      throw new ApiError('InputValidationError', 'triggerSchema must be a JSON schema object');
    }
    if (o.schedule !== undefined && !Array.isArray(o.schedule)) {
      throw new ApiError('InputValidationError', 'schedule must be an array');
    }
    if (o.bindings !== undefined && !Array.isArray(o.bindings)) {
      throw new ApiError('InputValidationError', 'bindings must be an array');
    }
    if (o.triggerSchema !== undefined) {
      try {
        foreignValidator(o.triggerSchema as Record<string, unknown>);
      } catch (e) {
        throw new ApiError(
          'InputValidationError',
          `triggerSchema is not a valid JSON schema: ${(e as Error).message}`,
        );
      }
    }
    return o as unknown as HookConfig;
  }

  /** Create or replace a hook (configuration by the embedded deployment or tests). */
  configureHook(hookGroupId: string, hookId: string, config: HookConfig): HookDefinition {
    if (!IDENT.test(hookGroupId)) {
      throw new ApiError('InvalidRequestArguments', `invalid hookGroupId '${hookGroupId}'`);
    }
    if (!HOOK_ID.test(hookId)) {
      throw new ApiError('InvalidRequestArguments', `invalid hookId '${hookId}'`);
    }
    const def = this.definition(hookGroupId, hookId, this.checkConfig(config));
    this.deps.db
      .prepare(
        `INSERT INTO hooks (hook_group_id, hook_id, definition) VALUES (?, ?, ?)
          ON CONFLICT(hook_group_id, hook_id) DO UPDATE SET definition = excluded.definition`,
      )
      .run(hookGroupId, hookId, JSON.stringify(def));
    return def;
  }

  get(hookGroupId: string, hookId: string): HookDefinition | undefined {
    const row = this.deps.db
      .prepare('SELECT * FROM hooks WHERE hook_group_id = ? AND hook_id = ?')
      .get(hookGroupId, hookId) as HookRow | undefined;
    return row ? JSON.parse(row.definition) : undefined;
  }

  private mustGet(g: string, h: string): HookDefinition {
    const def = this.get(g, h);
    if (!def) throw new ApiError('ResourceNotFound', `hook ${g}/${h} not found`);
    return def;
  }

  list(hookGroupId: string): HookDefinition[] {
    return (
      this.deps.db
        .prepare('SELECT * FROM hooks WHERE hook_group_id = ? ORDER BY hook_id')
        .all(hookGroupId) as HookRow[]
    ).map((r) => JSON.parse(r.definition));
  }

  lastFires(g: string, h: string): HookFire[] {
    return (
      this.deps.db
        .prepare(
          'SELECT * FROM hook_fires WHERE hook_group_id = ? AND hook_id = ? ORDER BY seq DESC LIMIT 100',
        )
        .all(g, h) as Array<Record<string, string>>
    ).map((r) => ({
      taskId: r.task_id!,
      firedBy: r.fired_by!,
      result: r.result as HookFire['result'],
      error: r.error!,
      time: r.time!,
    }));
  }

  /** A trigger schema is user data written for upstream's hooks service: see foreignValidator
   * (lenient, `$schema` of any draft accepted, compiled once per distinct schema). */
  private validator(def: HookDefinition): ValidateFunction {
    return foreignValidator(def.triggerSchema);
  }

  /** Render the hook's task for a trigger (exported for tests and dry runs). */
  render(
    def: HookDefinition,
    context: {
      firedBy: string;
      payload: unknown;
      clientId: string | null;
      taskId: string;
      now: Date;
    },
  ): TaskDefinition | null {
    const now = context.now;
    const ctx: Record<string, unknown> = {
      firedBy: context.firedBy,
      payload: context.payload,
      taskId: context.taskId,
      now: now.toISOString(),
    };
    if (context.clientId) ctx.clientId = context.clientId;
    let rendered: unknown;
    try {
      rendered = jsone(def.task, ctx);
    } catch (e) {
      throw new ApiError(
        'InputError',
        `rendering the task template of hook ${def.hookGroupId}/${def.hookId} failed: ${(e as Error).message}`,
      );
    }
    if (rendered === null || rendered === undefined) return null;
    if (typeof rendered !== 'object' || Array.isArray(rendered)) {
      throw new ApiError(
        'InputError',
        `the task template of hook ${def.hookGroupId}/${def.hookId} did not render to an object`,
      );
    }
    const task = rendered as Record<string, unknown>;
    return {
      created: now.toISOString(),
      deadline: new Date(now.getTime() + DAY).toISOString(),
      expires: addMonths(now, 1).toISOString(),
      ...task,
      taskGroupId: (task.taskGroupId as string | undefined) ?? context.taskId,
    } as TaskDefinition;
  }

  /** Fire a hook: validate, render, create the task with the hook's scopes. */
  async trigger(
    hookGroupId: string,
    hookId: string,
    payload: unknown,
    clientId: string | null,
    firedBy = 'triggerHook',
  ): Promise<{ taskId?: string; status?: { taskId: string } }> {
    const def = this.mustGet(hookGroupId, hookId);
    const validate = this.validator(def);
    if (!validate(payload)) {
      const errors = (validate.errors ?? [])
        .map((e) => `${e.instancePath || '/'} ${e.message}`)
        .join('; ');
      throw new ApiError(
        'InputError',
        `the payload does not match the triggerSchema of hook ${hookGroupId}/${hookId}: ${errors}`,
      );
    }
    const taskId = slugid.nice();
    const now = this.deps.clock.now();
    const record = (result: HookFire['result'], error = '') =>
      this.deps.db
        .prepare(
          `INSERT INTO hook_fires (hook_group_id, hook_id, task_id, fired_by, result, error, time)
            VALUES (?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(hookGroupId, hookId, taskId, firedBy, result, error, now.toISOString());
    let task: TaskDefinition | null;
    try {
      task = this.render(def, { firedBy, payload, clientId, taskId, now });
    } catch (e) {
      record('error', (e as Error).message);
      throw e;
    }
    if (!task) {
      record('no-task');
      return {};
    }
    const scopes = this.deps.expandScopes([`assume:hook-id:${hookGroupId}/${hookId}`]);
    try {
      await this.deps.createTask(taskId, task, scopes);
    } catch (e) {
      record('error', (e as Error).message);
      if (e instanceof ApiError) {
        throw new ApiError(
          e.code,
          `creating the task of hook ${hookGroupId}/${hookId} failed: ${e.message}`,
          e.details,
        );
      }
      throw e;
    }
    record('success');
    this.log.info('hook-fired', { hookGroupId, hookId, taskId, firedBy });
    return { taskId, status: { taskId } };
  }
}
