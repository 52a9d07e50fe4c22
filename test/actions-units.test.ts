// Fast unit tests of the pure parts of src/actions: hook names, pull-request detection, the push
// an action needs, json-e literals, tag-set matching, timestamp rebasing and task-id rewriting.
// No server, no file: each runs in milliseconds.
import assert from 'node:assert/strict';
import jsone from 'json-e';
import { rebaseTimestamps, replaceTaskIds } from '../src/actions/graph.js';
import {
  actionByCallback,
  actionPush,
  contextMatches,
  hookIdFor,
  isPullRequestPush,
  jsoneLiteral,
  tcymlHash,
} from '../src/actions/registry.js';
import type { TaskDefinition } from '../src/taskcluster/types.js';

describe('actions: pure helpers', () => {
  it('hookIdFor names the push hook and the pull-request hook, and refuses a / in a permission', () => {
    assert.equal(hookIdFor(3, 'generic', 'abcdef0123'), 'in-tree-action-3-generic/abcdef0123');
    assert.equal(
      hookIdFor('1', 'generic', 'abcdef0123', true),
      'in-tree-pr-action-1-generic/abcdef0123',
    );
    assert.throws(() => hookIdFor(1, 'my/action', 'abcdef0123'), /'\/' is not allowed/);
  });

  it('tcymlHash is the first 10 hex digits of the sha256 of the bytes', () => {
    // sha256('') = e3b0c44298fc1c14…
    assert.equal(tcymlHash(''), 'e3b0c44298');
    assert.equal(tcymlHash(Buffer.from('')), 'e3b0c44298');
  });

  it('isPullRequestPush: taskcluster-github pull requests (trusted or not), nothing else', () => {
    assert.equal(isPullRequestPush({ tasks_for: 'github-pull-request' }), true);
    assert.equal(isPullRequestPush({ tasks_for: 'github-pull-request-untrusted' }), true);
    assert.equal(isPullRequestPush({ tasksFor: 'github-pull-request' }), true);
    for (const tf of ['github-push', 'git-push', 'hg-push', 'action', 'cron', undefined]) {
      assert.equal(isPullRequestPush({ tasks_for: tf }), false, String(tf));
    }
  });

  it('actionPush reads either spelling, trims trailing slashes and names what is missing', () => {
    const push = actionPush({
      project: 'firefox-pr',
      level: 1,
      head_repository: 'https://github.com/mozilla-firefox/firefox/',
      base_repository: 'https://github.com/mozilla-firefox/firefox//',
      head_rev: 'a'.repeat(40),
      base_rev: 'b'.repeat(40),
      pushlog_id: '0',
      head_ref: 'refs/heads/fix',
    });
    assert.deepEqual(push, {
      project: 'firefox-pr',
      level: '1',
      repository: 'https://github.com/mozilla-firefox/firefox',
      revision: 'a'.repeat(40),
      owner: 'nobody@mozilla.com',
      pushlogId: '0',
      baseRevision: 'b'.repeat(40),
      branch: 'refs/heads/fix',
      baseRepository: 'https://github.com/mozilla-firefox/firefox',
    });
    assert.equal(
      actionPush({ project: 'p', level: '3', repository: 'https://h/p', revision: 'r' }).pushlogId,
      '0',
    );
    assert.throws(() => actionPush({ level: '3' }), /lack project, repository, revision/);
  });

  it('jsoneLiteral: json-e renders the escaped value back to itself', () => {
    const value = {
      text: 'cost ${dollars} and ${ more }',
      $eval: 'not an operator',
      nested: [{ $if: 'x', then: '${y}' }, 3, null, true],
    };
    assert.deepEqual(jsone(jsoneLiteral(value) as object, {}), value);
  });

  it('contextMatches: some tag-set is a subset of the tags; an empty context matches nothing', () => {
    const tags = { kind: 'build', platform: 'linux64' };
    assert.equal(contextMatches([{ kind: 'build' }], tags), true);
    assert.equal(contextMatches([{ kind: 'test' }, { platform: 'linux64' }], tags), true);
    assert.equal(contextMatches([{ kind: 'build', platform: 'mac' }], tags), false);
    assert.equal(contextMatches([{}], undefined), true, 'the empty tag-set matches any task');
    assert.equal(contextMatches([], tags), false);
  });

  it('actionByCallback knows every registered callback and lists them when it does not', () => {
    assert.equal(actionByCallback('retrigger-multiple').name, 'retrigger-multiple');
    assert.throws(
      () => actionByCallback('nope'),
      /unknown action callback 'nope'; known: .*cancel/,
    );
  });

  it('rebaseTimestamps moves every timestamp by the same amount, created to now', () => {
    const task = {
      created: '2026-01-01T00:00:00.000Z',
      deadline: '2026-01-02T00:00:00.000Z',
      expires: '2027-01-01T00:00:00.000Z',
      metadata: { name: 't' },
      payload: { artifacts: [{ expires: '2026-06-01T00:00:00Z' }], note: '2026-01-01' },
    } as unknown as TaskDefinition;
    const moved = rebaseTimestamps(task, new Date('2026-03-01T12:00:00.000Z')) as unknown as {
      created: string;
      deadline: string;
      payload: { artifacts: Array<{ expires: string }>; note: string };
    };
    assert.equal(moved.created, '2026-03-01T12:00:00.000Z');
    assert.equal(moved.deadline, '2026-03-02T12:00:00.000Z');
    assert.equal(moved.payload.artifacts[0]!.expires, '2026-07-30T12:00:00.000Z');
    assert.equal(moved.payload.note, '2026-01-01', 'a date that is not a timestamp stays');
    assert.throws(
      () => rebaseTimestamps({ ...task, created: 'never' }, new Date()),
      /no valid created time/,
    );
  });

  it('replaceTaskIds replaces whole task ids only, wherever they are', () => {
    const old = 'fN2wvtyQRKmw1JU1pVXY3w';
    const fresh = 'Zz2wvtyQRKmw1JU1pVXY3w';
    const value = {
      dependencies: [old, 'X' + old],
      url: `https://q/api/queue/v1/task/${old}/artifacts/public/x`,
    };
    assert.deepEqual(replaceTaskIds(value, new Map([[old, fresh]])), {
      dependencies: [fresh, 'X' + old],
      url: `https://q/api/queue/v1/task/${fresh}/artifacts/public/x`,
    });
    assert.equal(replaceTaskIds(value, new Map()), value, 'nothing to replace: the same object');
  });
});
