// The suite's one bounded poll: returns the first found value, retries a throwing probe, stops at
// once on giveUp, and names what it waited for when it times out.
import assert from 'node:assert/strict';
import { giveUp, GiveUp, waitFor } from './helpers/wait.js';

describe('waitFor', () => {
  it('returns the first value that is neither undefined nor false', async () => {
    let n = 0;
    const v = await waitFor(
      'the third probe',
      () => (++n < 3 ? (n === 1 ? undefined : false) : n),
      {
        intervalMs: 1,
      },
    );
    assert.equal(v, 3);
  });

  it('probes again after a probe throws', async () => {
    let n = 0;
    const v = await waitFor(
      'a probe that fails once',
      async () => {
        if (++n === 1) throw new Error('not yet');
        return 'ok';
      },
      { intervalMs: 1 },
    );
    assert.equal(v, 'ok');
  });

  it('stops at once on giveUp, without waiting for the timeout', async () => {
    let n = 0;
    await assert.rejects(
      waitFor('a child that exited', () => (++n, giveUp('it exited')), { timeoutMs: 60_000 }),
      (e: unknown) => e instanceof GiveUp && e.message === 'it exited',
    );
    assert.equal(n, 1);
  });

  it('times out naming what it waited for and the last error', async () => {
    await assert.rejects(
      waitFor(
        'the moon',
        () => {
          throw new Error('still below the horizon');
        },
        { timeoutMs: 5, intervalMs: 1 },
      ),
      /timed out after 5 ms waiting for the moon: still below the horizon/,
    );
  });
});
