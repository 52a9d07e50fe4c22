import assert from 'node:assert/strict';
import { assertUpstream, upstreamErrors, upstreamMethodSchema } from './helpers/upstream.js';

describe('upstream conformance helper', () => {
  it('validates a minimal task definition and rejects a broken one', () => {
    const now = new Date();
    const task = {
      taskQueueId: 'proj-mozharness/archive',
      schedulerId: 'mozharness-level-1',
      created: now.toISOString(),
      deadline: new Date(now.getTime() + 3600e3).toISOString(),
      payload: {},
      metadata: {
        name: 'x',
        description: 'y',
        owner: 'a@example.com',
        source: 'https://example.com/x',
      },
    };
    assertUpstream('/schemas/queue/v1/create-task-request.json', task);
    assert.ok(
      upstreamErrors('/schemas/queue/v1/create-task-request.json', { ...task, metadata: {} })
        .length > 0,
    );
    assert.deepEqual(
      upstreamErrors('treeherder/task-treeherder-config.json', { symbol: 'MH' }),
      [],
    );
    assert.equal(
      upstreamMethodSchema('queue', 'createTask', 'input'),
      '/schemas/queue/v1/create-task-request.json',
    );
  });
});
