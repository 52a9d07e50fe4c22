// Artifacts, as upstream's queue artifacts.js: reference, link and error artifacts (object and s3
// storage are refused: the embedded queue stores no bytes), their downloads (following links,
// checking `queue:get-artifact:<name>` for every non-public name on the way) and listings.
import { ApiError, type HandlerResult, type RequestContext } from '../framework.js';
import { decodeToken, encodeToken, pageSize } from '../paging.js';
import { validateRequest } from '../queue-validate.js';
import {
  ARTIFACTS_AFTER_EXCEPTION_MS,
  checkArtifactName,
  checkRunId,
  checkTaskId,
  DRIFT_MS,
  iso,
  taskNotFound,
  type ArtifactRow,
} from './model.js';
import type { QueueStore } from './store.js';

/** A post-artifact-request body (after validation). */
interface ArtifactInput {
  storageType: string;
  contentType?: string;
  expires: string;
  url?: string;
  artifact?: string;
  reason?: string;
  message?: string;
}

interface ArtifactTarget {
  taskId: string;
  runId: number;
  name: string;
}

export class ArtifactHandlers {
  constructor(private readonly store: QueueStore) {}

  createArtifact(ctx: RequestContext): HandlerResult {
    const target = {
      taskId: checkTaskId(ctx.params.taskId),
      runId: checkRunId(ctx.params.runId),
      name: checkArtifactName(ctx.params.name),
    };
    const input = validateRequest<ArtifactInput>('post-artifact-request', ctx.body);
    const { storageType } = input;
    const expires = Date.parse(input.expires);
    if (expires < this.store.nowMs() - DRIFT_MS) {
      throw new ApiError('InputError', 'artifact `expires` must be in the future', {
        expires: input.expires,
      });
    }
    this.checkRunTakesArtifacts(target, expires);
    if (storageType === 's3' || storageType === 'object') {
      throw new ApiError(
        'InputError',
        `storageType '${storageType}' is not served by the embedded queue; use a 'reference' artifact ` +
          'pointing at the uploaded object (or link/error)',
        { storageType },
      );
    }
    let details: Record<string, string | undefined>;
    if (storageType === 'reference') details = { url: input.url };
    else if (storageType === 'link') details = { artifact: input.artifact };
    else details = { reason: input.reason, message: input.message };
    this.store.tx(() =>
      this.upsert({
        task_id: target.taskId,
        run_id: target.runId,
        name: target.name,
        storage_type: storageType as ArtifactRow['storage_type'],
        content_type: input.contentType ?? 'application/binary',
        details: JSON.stringify(details),
        expires,
      }),
    );
    return { body: { storageType } };
  }

  /** Throws unless the run exists, was claimed, outlives the artifact and still takes artifacts. */
  private checkRunTakesArtifacts({ taskId, runId }: ArtifactTarget, expires: number): void {
    const rec = this.store.load(taskId);
    if (!rec) throw new ApiError('InputError', `task ${taskId} not found`, { taskId });
    const run = rec.runs[runId];
    if (!run) {
      throw new ApiError('InputError', `run ${runId} of task ${taskId} not found`, {
        taskId,
        runId,
      });
    }
    if (!run.workerGroup || !run.workerId) {
      throw new ApiError(
        'InputError',
        `run ${runId} of task ${taskId} was not claimed by a worker and so no artifacts can exist`,
        { taskId, runId },
      );
    }
    if (expires > rec.expires) {
      throw new ApiError(
        'InputError',
        `artifact expires (${iso(expires)}) after the task expires (${rec.def.expires}); ` +
          'artifacts may not outlive their task',
        { taskExpires: rec.def.expires, expires: iso(expires) },
      );
    }
    if (run.state === 'running') return;
    const allowed =
      run.state === 'exception' &&
      !!run.resolved &&
      Date.parse(run.resolved) > this.store.nowMs() - ARTIFACTS_AFTER_EXCEPTION_MS;
    if (!allowed) {
      throw new ApiError(
        'RequestConflict',
        `artifacts cannot be created for run ${runId} of task ${taskId}: it is ${run.state}. ` +
          "Artifacts are created while the run is running (or up to 25 min after an 'exception').",
        { taskId, runId, state: run.state },
      );
    }
  }

  /** Insert an artifact, or change an existing one as upstream allows (reference → new url or
   * link, extending expires); anything else conflicts. */
  private upsert(row: ArtifactRow): void {
    const { st } = this.store;
    const original = st.getArtifact.get(row.task_id, row.run_id, row.name) as
      ArtifactRow | undefined;
    if (!original) {
      st.insertArtifact.run(row);
      return;
    }
    const storageType = row.storage_type;
    const compatible =
      (storageType === 'link' || original.content_type === row.content_type) &&
      original.expires <= row.expires &&
      (original.storage_type === storageType
        ? storageType === 'reference' || original.details === row.details
        : original.storage_type === 'reference' && storageType === 'link');
    if (!compatible) {
      throw new ApiError(
        'RequestConflict',
        `artifact ${row.name} of run ${row.run_id} of task ${row.task_id} already exists with different ` +
          'properties, and none of the allowed changes apply (reference → new url or link, ' +
          'extending expires)',
        {
          originalArtifact: {
            storageType: original.storage_type,
            contentType: original.content_type,
            expires: iso(original.expires),
          },
        },
      );
    }
    st.updateArtifact.run(row);
  }

  finishArtifact(ctx: RequestContext): HandlerResult {
    const taskId = checkTaskId(ctx.params.taskId);
    const runId = checkRunId(ctx.params.runId);
    const name = checkArtifactName(ctx.params.name);
    validateRequest('finish-artifact-request', ctx.body);
    const row = this.store.st.getArtifact.get(taskId, runId, name) as ArtifactRow | undefined;
    if (!row || !this.store.load(taskId)?.runs[runId]) {
      throw new ApiError(
        'ResourceNotFound',
        `artifact ${name} of run ${runId} of task ${taskId} not found`,
        { taskId, runId, name },
      );
    }
    throw new ApiError(
      'InputError',
      `only object artifacts can be finished; ${name} is a '${row.storage_type}' artifact`,
      { storageType: row.storage_type },
    );
  }

  /** Names that need `queue:get-artifact:<name>`; public/ artifacts are readable by anyone. */
  private requireArtifactScopes(ctx: RequestContext, names: string[]): void {
    const guarded = names.filter((n) => !n.startsWith('public/'));
    if (guarded.length) {
      ctx.authorize({ names: guarded });
    }
  }

  private latestRunId(taskId: string): number {
    const rec = this.store.load(taskId);
    if (!rec) throw taskNotFound(taskId);
    if (rec.runs.length === 0) {
      throw new ApiError('ResourceNotFound', `task ${taskId} doesn't have any runs`, { taskId });
    }
    return rec.runs.length - 1;
  }

  /** The stored artifact `name` of a run (404 when there is none). */
  private mustGet(taskId: string, runId: number, name: string): ArtifactRow {
    const row = this.store.st.getArtifact.get(taskId, runId, name) as ArtifactRow | undefined;
    if (!row) {
      throw new ApiError(
        'ResourceNotFound',
        `artifact ${name} not found on run ${runId} of task ${taskId}`,
        { taskId, runId, name },
      );
    }
    return row;
  }

  /** The artifact at `name`, following link artifacts (checking scopes for every name). */
  private followLinks(ctx: RequestContext, { taskId, runId, name: first }: ArtifactTarget) {
    const names: string[] = [];
    let name = first;
    for (;;) {
      names.push(name);
      this.requireArtifactScopes(ctx, names);
      const row = this.mustGet(taskId, runId, name);
      if (row.expires < this.store.nowMs()) {
        throw new ApiError('ResourceExpired', `artifact ${name} has expired`, {
          taskId,
          runId,
          name,
        });
      }
      if (row.storage_type !== 'link') {
        return { row, details: JSON.parse(row.details) as Record<string, string> };
      }
      const target = (JSON.parse(row.details) as { artifact: string }).artifact;
      if (names.includes(target)) {
        throw new ApiError('InputError', `artifact ${first} leads to a link cycle`, {
          names: [...names, target],
        });
      }
      name = target;
    }
  }

  private artifactTarget(ctx: RequestContext, latest: boolean): ArtifactTarget {
    const taskId = checkTaskId(ctx.params.taskId);
    const name = checkArtifactName(ctx.params.name);
    if (latest) {
      this.requireArtifactScopes(ctx, [name]); // permission before revealing a 404
      return { taskId, name, runId: this.latestRunId(taskId) };
    }
    return { taskId, name, runId: checkRunId(ctx.params.runId) };
  }

  /** getArtifact / getLatestArtifact: a 303 to the reference's url, or the error artifact's 424. */
  download(ctx: RequestContext, latest: boolean): HandlerResult {
    const { row, details } = this.followLinks(ctx, this.artifactTarget(ctx, latest));
    const headers = { 'x-taskcluster-artifact-storage-type': row.storage_type };
    if (row.storage_type === 'error') {
      return { status: 424, body: { reason: details.reason, message: details.message }, headers };
    }
    return {
      status: 303,
      body: { storageType: row.storage_type, url: details.url },
      headers: { ...headers, location: details.url },
    };
  }

  /** artifact / latestArtifact: how to get the content, as a JSON answer. */
  content(ctx: RequestContext, latest: boolean): HandlerResult {
    const { row, details } = this.followLinks(ctx, this.artifactTarget(ctx, latest));
    if (row.storage_type === 'error') {
      return { body: { storageType: 'error', reason: details.reason, message: details.message } };
    }
    return { body: { storageType: 'reference', url: details.url } };
  }

  private serialize(row: ArtifactRow): Record<string, unknown> {
    return {
      storageType: row.storage_type,
      name: row.name,
      expires: iso(row.expires),
      contentType: row.content_type,
    };
  }

  /** The run an artifact listing is about: the latest, or the one named. */
  private listedRunId(ctx: RequestContext, taskId: string, latest: boolean): number {
    return latest ? this.latestRunId(taskId) : checkRunId(ctx.params.runId);
  }

  info(ctx: RequestContext, latest: boolean): HandlerResult {
    const taskId = checkTaskId(ctx.params.taskId);
    const name = checkArtifactName(ctx.params.name);
    const runId = this.listedRunId(ctx, taskId, latest);
    return { body: this.serialize(this.mustGet(taskId, runId, name)) };
  }

  list(ctx: RequestContext, latest: boolean): HandlerResult {
    const taskId = checkTaskId(ctx.params.taskId);
    const runId = this.listedRunId(ctx, taskId, latest);
    if (!latest && runId > this.latestRunId(taskId)) {
      throw new ApiError('ResourceNotFound', `task ${taskId} has no run ${runId}`, {
        taskId,
        runId,
      });
    }
    const limit = pageSize(ctx.query);
    const after = decodeToken<string>(ctx.query.continuationToken, 'string') ?? '';
    const rows = this.store.st.artifactPage.all(taskId, runId, after, limit + 1) as ArtifactRow[];
    const more = rows.length > limit;
    const page = rows.slice(0, limit);
    const body: Record<string, unknown> = { artifacts: page.map((r) => this.serialize(r)) };
    if (more) body.continuationToken = encodeToken(page[page.length - 1].name);
    return { body };
  }
}
