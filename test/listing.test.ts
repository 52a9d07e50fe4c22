// The client-side paging of taskcluster/listing: every page in order, each asked with the
// previous page's token, and stopping at the first page without one.
import assert from 'node:assert/strict';
import { latestArtifactExpiry, pages } from '../src/taskcluster/listing.js';
import type { QueueClient } from '../src/taskcluster/client.js';

describe('taskcluster listing: pages', () => {
  it('asks each page with the previous token and stops at the last', async () => {
    const asked: Array<{ continuationToken?: string }> = [];
    const book: Record<string, { items: number[]; continuationToken?: string }> = {
      '': { items: [1, 2], continuationToken: 'b' },
      b: { items: [3], continuationToken: 'c' },
      c: { items: [] },
    };
    const seen: number[] = [];
    for await (const page of pages(async (q) => {
      asked.push(q);
      return book[q.continuationToken ?? '']!;
    })) {
      seen.push(...page.items);
    }
    assert.deepEqual(seen, [1, 2, 3]);
    assert.deepEqual(asked, [{}, { continuationToken: 'b' }, { continuationToken: 'c' }]);
  });

  it('finds an artifact on a later page and stops reading there', async () => {
    let calls = 0;
    const queue = {
      async listLatestArtifacts(_taskId: string, q?: { continuationToken?: string }) {
        calls++;
        return q?.continuationToken
          ? {
              artifacts: [{ name: 'public/x', expires: '2030-01-01T00:00:00.000Z' }],
              continuationToken: 'z',
            }
          : {
              artifacts: [{ name: 'public/y', expires: '2029-01-01T00:00:00.000Z' }],
              continuationToken: 'p2',
            };
      },
    } as unknown as QueueClient;
    assert.equal(await latestArtifactExpiry(queue, 't', 'public/x'), '2030-01-01T00:00:00.000Z');
    assert.equal(calls, 2);
  });
});
