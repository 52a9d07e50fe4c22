// Client-side reads of the services' paged listings: every page of a `continuationToken` listing,
// and the listings more than one stage reads whole.
import type { QueueClient } from './client.js';
import type { TaskWithStatus } from './types.js';

/** A page of a listing: the next page's token, absent on the last. */
interface Page {
  continuationToken?: string;
}

/**
 * Every page of a listing, in order: `list` is called with the previous page's token (none for
 * the first page) until a page carries none.
 */
export async function* pages<P extends Page>(
  list: (query: { continuationToken?: string }) => Promise<P>,
): AsyncGenerator<P> {
  let continuationToken: string | undefined;
  do {
    const page = await list(continuationToken ? { continuationToken } : {});
    yield page;
    continuationToken = page.continuationToken;
  } while (continuationToken);
}

/** Every task of a task group (all pages). */
export async function listTaskGroup(
  queue: QueueClient,
  taskGroupId: string,
): Promise<TaskWithStatus[]> {
  const out: TaskWithStatus[] = [];
  for await (const page of pages((q) => queue.listTaskGroup(taskGroupId, q))) {
    out.push(...(page.tasks ?? []));
  }
  return out;
}

/** When the latest run's artifact `name` of a task expires, or undefined if it has none. */
export async function latestArtifactExpiry(
  queue: QueueClient,
  taskId: string,
  name: string,
): Promise<string | undefined> {
  for await (const page of pages((q) => queue.listLatestArtifacts(taskId, q))) {
    const artifact = (page.artifacts ?? []).find((a) => a.name === name);
    if (artifact) return artifact.expires;
  }
  return undefined;
}
